package lualib

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/whenlua/whenlua"
)

func TestToLua(t *testing.T) {
	cases := []struct {
		name string
		in   whenlua.Value
		want lua.LValue
	}{
		{"an int becomes a number", whenlua.Int(42), lua.LNumber(42)},
		{"a negative int becomes a number", whenlua.Int(-7), lua.LNumber(-7)},
		{"a float becomes a number", whenlua.Float(1.5), lua.LNumber(1.5)},
		{"a string becomes a string", whenlua.String("hi"), lua.LString("hi")},
		{"true becomes true", whenlua.Bool(true), lua.LTrue},
		{"false becomes false", whenlua.Bool(false), lua.LFalse},
		{"unset becomes nil", whenlua.Nil, lua.LNil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ToLua(tc.in); got != tc.want {
				t.Fatalf("ToLua(%+v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestFromLua(t *testing.T) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	cases := []struct {
		name string
		in   lua.LValue
		want whenlua.Value
		err  string
	}{
		{"an integral number becomes an int", lua.LNumber(42), whenlua.Int(42), ""},
		{"a negative integral number becomes an int", lua.LNumber(-3), whenlua.Int(-3), ""},
		{"minus zero becomes the int 0", lua.LNumber(math.Copysign(0, -1)), whenlua.Int(0), ""},
		{"a fraction becomes a float", lua.LNumber(2.5), whenlua.Float(2.5), ""},
		{"a number past int64 becomes a float", lua.LNumber(1e300), whenlua.Float(1e300), ""},
		{"2^63 becomes a float", lua.LNumber(1 << 63), whenlua.Float(1 << 63), ""},
		{"-2^63 is still an int", lua.LNumber(-(1 << 63)), whenlua.Int(math.MinInt64), ""},
		{"infinity becomes a float", lua.LNumber(math.Inf(1)), whenlua.Float(math.Inf(1)), ""},
		{"a string becomes a string", lua.LString("x"), whenlua.String("x"), ""},
		{"a numeric string stays a string", lua.LString("5"), whenlua.String("5"), ""},
		{"true becomes a bool", lua.LTrue, whenlua.Bool(true), ""},
		{"false becomes a bool", lua.LFalse, whenlua.Bool(false), ""},
		{"nil unsets", lua.LNil, whenlua.Nil, ""},
		{"a table is refused", L.NewTable(), whenlua.Nil, "a table cannot be stored"},
		{"a function is refused", L.NewFunction(func(*lua.LState) int { return 0 }), whenlua.Nil, "a function cannot be stored"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromLua(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, whenlua.ErrInvalid) {
					t.Fatalf("FromLua(%v) error = %v, want ErrInvalid with %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("FromLua(%v) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
	t.Run("NaN becomes a float NaN", func(t *testing.T) {
		got, err := FromLua(lua.LNumber(math.NaN()))
		if err != nil || got.T != whenlua.TypeFloat || !math.IsNaN(got.F) {
			t.Fatalf("FromLua(NaN) = %+v, %v", got, err)
		}
	})
}

func TestStringsCrossByteForByte(t *testing.T) {
	for _, s := range []string{"", "plain", "\xff\xfe not UTF-8", "é"} {
		got, err := FromLua(ToLua(whenlua.String(s)))
		if err != nil || got.T != whenlua.TypeString || got.S != s {
			t.Fatalf("%q crossed as %+v, %v", s, got, err)
		}
	}
}

func TestValuesTable(t *testing.T) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	cases := []struct {
		name string
		in   map[string]whenlua.Value
		want map[string]lua.LValue
	}{
		{"no variables give an empty table", nil, map[string]lua.LValue{}},
		{"each variable is converted as ToLua does",
			map[string]whenlua.Value{"i": whenlua.Int(3), "f": whenlua.Float(0.5), "s": whenlua.String("\xff"), "b": whenlua.Bool(false)},
			map[string]lua.LValue{"i": lua.LNumber(3), "f": lua.LNumber(0.5), "s": lua.LString("\xff"), "b": lua.LFalse}},
		{"an unset variable is absent", map[string]whenlua.Value{"gone": whenlua.Nil, "x": whenlua.Int(1)},
			map[string]lua.LValue{"x": lua.LNumber(1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]lua.LValue{}
			ValuesTable(L, tc.in).ForEach(func(k, v lua.LValue) { got[k.String()] = v })
			if !maps.Equal(got, tc.want) {
				t.Fatalf("ValuesTable(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// assignments renders as as "name=type:value ...", for comparing.
func assignments(as []whenlua.Assignment) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "%s=%s:%s ", a.Name, a.Value.T, a.Value.LineString())
	}
	return strings.TrimSpace(b.String())
}

func TestArgAssignments(t *testing.T) {
	cases := []struct {
		name, call, want, err string
	}{
		{"a name and an integral number give an int", `f("x", 3)`, "x=int:3", ""},
		{"an integral float gives an int", `f("x", 2^53)`, "x=int:9007199254740992", ""},
		{"a fraction gives a float", `f("x", 2.5)`, "x=float:2.5", ""},
		{"a name alone unsets", `f("x")`, "x=nil:", ""},
		{"nil unsets", `f("x", nil)`, "x=nil:", ""},
		{"a string that is not UTF-8 is kept byte for byte", `f("x", "\255\254")`, `x=string:"\xff\xfe"`, ""},
		{"a table gives its fields sorted by name", `f{b = true, a = "s", c = 1.5}`, "a=string:s b=bool:true c=float:1.5", ""},
		{"an empty table gives nothing and no error", `f{}`, "", ""},
		{"NaN is refused", `f("x", 0/0)`, "", "value of x is NaN: only finite floats are stored"},
		{"infinity is refused", `f{x = -1/0}`, "", "value of x is -Inf: only finite floats are stored"},
		{"a table value is refused", `f("x", {})`, "", "x: invalid: a table cannot be stored in a variable"},
		{"a nested table is refused", `f{x = {1}}`, "", "x: invalid: a table cannot be stored in a variable"},
		{"a function value is refused", `f{x = print}`, "", "x: invalid: a function cannot be stored"},
		{"a key that is not a string is refused", `f{[1] = 2}`, "", "variable names are strings, not number 1"},
		{"a bad name is refused", `f("9x", 1)`, "", `variable name "9x": want letters`},
		{"a reserved name is refused", `f{JOBNAME = "x"}`, "", "variable name JOBNAME is reserved"},
		{"a NUL byte is refused", `f("x", "a\0b")`, "", "value of x contains a NUL byte"},
		{"a third argument is refused", `f("x", 1, 2)`, "", "want f(name, value) or f{name = value, ...}"},
		{"a second argument after a table is refused", `f({x = 1}, 2)`, "", "want f(name, value) or f{name = value, ...}"},
		{"a number first is refused with its type", `f(5)`, "", "want f(name, value) or f{name = value, ...}, not a number"},
		{"no argument is refused", `f()`, "", "not a nil"},
	}
	L := lua.NewState()
	defer L.Close()
	var got []whenlua.Assignment
	var err error
	L.SetGlobal("f", L.NewFunction(func(L *lua.LState) int {
		got, err = ArgAssignments(L, "f")
		return 0
	}))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if e := L.DoString(tc.call); e != nil {
				t.Fatal(e)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || got != nil) {
				t.Fatalf("%s = %v, %v; want only an error with %q", tc.call, got, err, tc.err)
			}
			if tc.err == "" && (err != nil || assignments(got) != tc.want) {
				t.Fatalf("%s = %q, %v; want %q", tc.call, assignments(got), err, tc.want)
			}
		})
	}
}

func TestFields(t *testing.T) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	cases := []struct {
		name   string
		fields int
		failAt int // the call that fails, from 1; 0 for none
		calls  int
	}{
		{"an empty table calls nothing", 0, 0, 0},
		{"each field is called once", 3, 0, 3},
		{"an error in the first call ends the walk", 3, 1, 1},
		{"an error in the second call ends the walk", 3, 2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tbl := L.NewTable()
			for i := range tc.fields {
				tbl.RawSetString(fmt.Sprintf("k%d", i), lua.LTrue)
			}
			calls := 0
			err := Fields(tbl, func(k, v lua.LValue) error {
				calls++
				if calls == tc.failAt {
					return fmt.Errorf("call %d", calls)
				}
				return nil
			})
			want := "<nil>"
			if tc.failAt > 0 {
				want = fmt.Sprintf("call %d", tc.failAt)
			}
			if calls != tc.calls || fmt.Sprint(err) != want {
				t.Fatalf("Fields made %d calls and gave %v; want %d calls and %s", calls, err, tc.calls, want)
			}
		})
	}
}

func TestPreInfoTable(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	start := time.Unix(1700000000, 500_000_000)
	cases := []struct {
		name    string
		running []whenlua.Run
		want    string
	}{
		{"no run running gives an empty list", nil, "j 7 1 x 0"},
		{"each running run is a table", []whenlua.Run{{Job: "a", Serial: 5, PID: 99, Start: start}, {Job: "b", Serial: 6, PID: 100}},
			"j 7 1 x 2 a/5/99/1700000000.5 b/6/100/0.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			L.SetGlobal("info", PreInfoTable(L, "j", 7, map[string]whenlua.Value{"n": whenlua.Int(1), "s": whenlua.String("x")}, tc.running))
			err := L.DoString(`
local r = info.running
local s = string.format("%s %d %s %s %d", info.job_name, info.serial, tostring(info.variables.n), info.variables.s, #r)
for _, e in ipairs(r) do s = s .. " " .. e.job_name .. "/" .. e.serial .. "/" .. e.pid .. "/" .. string.format("%.1f", e.start_time) end
seen = s`)
			if err != nil {
				t.Fatal(err)
			}
			if got := L.GetGlobal("seen").String(); got != tc.want {
				t.Fatalf("info seen as %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewResultAndResultOf(t *testing.T) {
	start := time.Unix(1700000000, 0)
	cases := []struct {
		name string
		run  whenlua.Run
		want Result
	}{
		{"a clean exit has nil signal and error, attempt 1, final",
			whenlua.Run{Job: "j", Serial: 3, Code: 0, Start: start, End: start.Add(1500 * time.Millisecond), OutputSize: 10, Output: []byte("out")},
			Result{JobName: "j", Serial: 3, Signal: lua.LNil, Error: lua.LNil, Tmpdir: "/tmp/d", StartTime: 1700000000, EndTime: 1700000001.5,
				Duration: 1.5, OutputSize: 10, Attempt: 1, Final: true, Node: lua.LNil}},
		{"a run of a cluster names its node",
			whenlua.Run{Job: "j", Serial: 5, Node: "web1"},
			Result{JobName: "j", Serial: 5, Signal: lua.LNil, Error: lua.LNil, Tmpdir: "/tmp/d", Attempt: 1, Final: true, Node: lua.LString("web1")}},
		{"a killed attempt to be retried carries its signal, error and number",
			whenlua.Run{Job: "j", Serial: 4, Code: -1, Signal: "KILL", Error: "timed out", Attempt: 2, RetryAt: start},
			Result{JobName: "j", Serial: 4, Code: -1, Signal: lua.LString("KILL"), Error: lua.LString("timed out"), Tmpdir: "/tmp/d",
				Attempt: 2, Final: false, Node: lua.LNil}},
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NewResult(tc.run, "/tmp/d")
			if got.Output() != string(tc.run.Output) {
				t.Fatalf("Output() = %q, want %q", got.Output(), tc.run.Output)
			}
			got.output = nil
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tc.want) {
				t.Fatalf("NewResult = %+v\nwant %+v", got, tc.want)
			}
			ud := L.NewUserData()
			ud.Value = NewResult(tc.run, "/tmp/d")
			if r, ok := ResultOf(ud); !ok || r.Serial != tc.run.Serial || r.Output() != string(tc.run.Output) {
				t.Fatalf("ResultOf(userdata) = %+v, %v", r, ok)
			}
		})
	}
	t.Run("anything else is not a result", func(t *testing.T) {
		ud := L.NewUserData()
		ud.Value = "a string"
		for _, v := range []lua.LValue{lua.LNil, L.NewTable(), lua.LString("r"), ud} {
			if _, ok := ResultOf(v); ok {
				t.Fatalf("ResultOf(%v) is a result", v)
			}
		}
	})
}

func TestUnixSeconds(t *testing.T) {
	cases := []struct {
		name string
		t    time.Time
		f    float64
	}{
		{"the zero time is 0", time.Time{}, 0},
		{"a whole second", time.Unix(1700000000, 0), 1700000000},
		{"a fraction of a second", time.Unix(1700000000, 500_000_000), 1700000000.5},
		{"before 1970", time.Unix(-10, 0), -10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := UnixSeconds(tc.t); got != tc.f {
				t.Fatalf("UnixSeconds(%v) = %v, want %v", tc.t, got, tc.f)
			}
			if back := FromUnixSeconds(tc.f); !back.Equal(tc.t) {
				t.Fatalf("FromUnixSeconds(%v) = %v, want %v", tc.f, back, tc.t)
			}
		})
	}
}

func TestTypedArgumentsAndFields(t *testing.T) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	fn := L.NewFunction(func(*lua.LState) int { return 0 })
	tbl := L.NewTable()
	cases := []struct {
		name string
		read func(lua.LValue) (any, error)
		in   lua.LValue
		want any
		err  string
	}{
		{"a string field reads a string", func(v lua.LValue) (any, error) { return AsString(v, "option name", "a string") },
			lua.LString("\xffx"), "\xffx", ""},
		{"a string field refuses a number", func(v lua.LValue) (any, error) { return AsString(v, "option name", "a string") },
			lua.LNumber(1), nil, "option name must be a string, not a number"},
		{"a bool field reads false", func(v lua.LValue) (any, error) { return AsBool(v, "option catch_up", "true or false") },
			lua.LFalse, false, ""},
		{"a bool field refuses nil", func(v lua.LValue) (any, error) { return AsBool(v, "only_on_failure", "a boolean") },
			lua.LNil, nil, "only_on_failure must be a boolean, not a nil"},
		{"a function field reads a function", func(v lua.LValue) (any, error) { return AsFunction(v, "option pre") },
			fn, fn, ""},
		{"a function field refuses a string", func(v lua.LValue) (any, error) { return AsFunction(v, "option post") },
			lua.LString("f"), nil, "option post must be a function, not a string"},
		{"a table field reads a table", func(v lua.LValue) (any, error) { return AsTable(v, "option retry", "a table") },
			tbl, tbl, ""},
		{"an argument names itself in the error", func(v lua.LValue) (any, error) {
			return AsString(v, "every: the period", `a string such as "10 minutes"`)
		}, lua.LNumber(10), nil, `every: the period must be a string such as "10 minutes", not a number`},
		{"a table field refuses a bool", func(v lua.LValue) (any, error) { return AsTable(v, "option retry", "a table such as {}") },
			lua.LTrue, nil, "option retry must be a table such as {}, not a boolean"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.read(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("read %v as %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestOptDuration(t *testing.T) {
	cases := []struct {
		name string
		in   lua.LValue
		want time.Duration
		err  string
	}{
		{"a duration string", lua.LString("90s"), 90 * time.Second, ""},
		{"spaces around it are dropped", lua.LString(" 1h30m "), 90 * time.Minute, ""},
		{"a number is seconds", lua.LNumber(1.5), 1500 * time.Millisecond, ""},
		{"a word is refused", lua.LString("soon"), 0, `option hold "soon" is not a duration`},
		{"zero seconds are refused", lua.LNumber(0), 0, "option hold must be positive, not 0"},
		{"a negative duration is refused", lua.LString("-5s"), 0, "option hold must be positive, not -5s"},
		{"NaN is refused", lua.LNumber(math.NaN()), 0, "option hold must be positive, not NaN"},
		{"infinity is refused", lua.LNumber(math.Inf(1)), 0, "option hold of +Inf seconds is too long"},
		{"too many seconds are refused", lua.LNumber(1e12), 0, "option hold of 1000000000000 seconds is too long (at most 2562047h47m16s)"},
		{"nil is refused", lua.LNil, 0, `option hold must be a duration such as "30m", not a nil`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OptDuration("hold", tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("OptDuration(%v) error %v, want one with %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("OptDuration(%v) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}
