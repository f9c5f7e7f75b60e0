package whenlua

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestAValueWithANULByteIsInvalid(t *testing.T) {
	if err := ValidateValue("x", String("a\x00b")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ValidateValue of a NUL byte = %v, want ErrInvalid", err)
	}
	if err := ValidateValue("x", String("a\x01b\xff")); err != nil {
		t.Fatalf("ValidateValue of other bytes = %v", err)
	}
}

func TestLineStringKeepsAValueOnOneLine(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{String("plain words"), "plain words"},
		{String(`a "b"`), `a "b"`},
		{String("a\nb"), `"a\nb"`},
		{String("a\tb\r"), `"a\tb\r"`},
		{String("\x1b[31m"), `"\x1b[31m"`},
		{String(`"x"`), `"\"x\""`},
		{String("é ü"), "é ü"},
		{String("a\u2028b"), `"a\u2028b"`},
		{String("abc\u202edef"), `"abc\u202edef"`},
		{String("bad \xff byte"), `"bad \xff byte"`},
		{String("nbsp\u00a0ok"), "nbsp\u00a0ok"},
		{String(""), ""},
		{Int(-3), "-3"},
		{Bool(true), "true"},
	} {
		if got := tc.v.LineString(); got != tc.want {
			t.Errorf("%#v.LineString() = %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestAStringThatIsNotUTF8CrossesJSONByteForByte(t *testing.T) {
	for _, s := range []string{"\xff\xfeA", "a\x80", "", "plain", "é"} {
		b, err := json.Marshal(String(s))
		if err != nil {
			t.Fatal(err)
		}
		var back Value
		if err := json.Unmarshal(b, &back); err != nil || back != String(s) {
			t.Errorf("%q went over as %s and came back as %q (%v)", s, b, back.S, err)
		}
	}
}

func TestNaNAndTheInfinitiesAreRefused(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if err := ValidateValue("f", Float(f)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "only finite floats") {
			t.Errorf("ValidateValue(%v) = %v", f, err)
		}
		if _, err := ParseValue(TypeFloat, strconv.FormatFloat(f, 'g', -1, 64)); err == nil {
			t.Errorf("ParseValue(%v) succeeded", f)
		}
	}
}

func TestASetIsValidatedAgainstTheLimitsOfOneTransaction(t *testing.T) {
	set := func(n, size int) SetRequest {
		r := SetRequest{Mode: ModeSet}
		for i := range n {
			r.Assignments = append(r.Assignments, Assignment{Name: fmt.Sprintf("v%d", i), Value: String(strings.Repeat("a", size))})
		}
		return r
	}
	for _, c := range []struct {
		name string
		req  SetRequest
		want string
	}{
		{"the most assignments", set(MaxAssignments, 1), ""},
		{"one assignment too many", set(MaxAssignments+1, 1), "more than 1000"},
		{"the largest values", set(4, MaxValueLen-4), ""},
		{"too many bytes", set(5, MaxValueLen), "more than 262144"},
		{"nothing", SetRequest{}, "nothing to set"},
		{"a name twice", SetRequest{Assignments: []Assignment{{Name: "a", Value: Int(1)}, {Name: "a", Value: Int(2)}}}, "assigned twice"},
		{"an unknown mode", SetRequest{Mode: "x", Assignments: []Assignment{{Name: "a", Value: Int(1)}}}, "unknown mode"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.req.Validate()
			if c.want == "" && err != nil || c.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("Validate = %v, want %q", err, c.want)
			}
		})
	}
}

func TestApplyAssignmentsSetsAndUnsetsInOrder(t *testing.T) {
	vars := map[string]Value{"gone": Int(1), "kept": String("k")}
	ApplyAssignments(vars, []Assignment{{Name: "gone", Value: Value{}}, {Name: "x", Value: Int(1)}, {Name: "x", Value: Int(2)}, {Name: "never", Value: Value{}}})
	if len(vars) != 2 || !vars["x"].Equal(Int(2)) || !vars["kept"].Equal(String("k")) {
		t.Fatalf("vars = %v, want kept=k and x=2", vars)
	}
}

// Every origin a set can have sorts into its kind, and the job or file it
// names does not change the kind.
func TestOriginKind(t *testing.T) {
	for origin, want := range map[string]string{
		OriginCLI:               "cli",
		OriginWhisper:           "whisper",
		OriginLoad("/j/a.lua"):  "load",
		OriginPre("backup"):     "pre",
		OriginPost("backup"):    "post",
		OriginPost("job x pre"): "post",
		OriginSilence("backup"): "on_silence",
		"job backup":            "other",
		"test":                  "other",
		"":                      "other",
	} {
		if got := OriginKind(origin); got != want {
			t.Errorf("OriginKind(%q) = %q, want %q", origin, got, want)
		}
	}
}
