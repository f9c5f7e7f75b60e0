package whenlua

import (
	"errors"
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
