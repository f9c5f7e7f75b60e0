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
