package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// FuzzParseAssignments feeds parseAssignments (the arguments of set,
// whisper and test) arbitrary argument lists, NUL-separated since an
// argument cannot hold a NUL. Nothing may panic; a failure is the help
// request, a usage error (exit 2) or an error wrapping ErrInvalid (exit 1);
// a success is a non-empty list of valid assignments with distinct names,
// each written as NAME=VALUE among the arguments, which parse back to the
// same values when written again with their types.
func FuzzParseAssignments(f *testing.F) {
	for _, args := range [][]string{
		{"a=1"},
		{"--type", "int", "n=42", "m=-0x10", "--type=float", "f=1e-3", "-t", "bool", "b=yes", "-type=string", "s=x=y"},
		{"--type", "float", "f=NaN", "g=-Inf", "h= 2.5 "},
		{"--", "--type=1"},
		{"-h"},
		{"--type"},
		{"--type", "complex", "a=1"},
		{"--frob", "a=1"},
		{"novalue"},
		{"=1"},
		{"a=1", "a=2"},
		{"JOBSERIAL=1"},
		{"x-y=1"},
		{"--type", "int", "n=9223372036854775808"},
		{"--type", "bool", "b=maybe"},
		{"é=1"},
		{"a="},
		{},
	} {
		f.Add(strings.Join(args, "\x00"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		var args []string
		if joined != "" {
			args = strings.Split(joined, "\x00")
		}
		as, err := parseAssignments(args)
		if err != nil {
			var ee *exitError
			switch {
			case err == errHelp:
			case errors.As(err, &ee) && ee.code == 2 && ee.err != nil:
			case errors.Is(err, whenlua.ErrInvalid):
			default:
				t.Fatalf("parseAssignments(%q): error %v (%T) is neither a usage error nor ErrInvalid", args, err, err)
			}
			if as != nil {
				t.Fatalf("parseAssignments(%q) returned assignments with the error %v", args, err)
			}
			return
		}
		if len(as) == 0 || len(as) > len(args) {
			t.Fatalf("parseAssignments(%q) = %d assignments", args, len(as))
		}
		seen := map[string]bool{}
		var again []string
		for _, a := range as {
			if err := a.Validate(); err != nil {
				t.Fatalf("parseAssignments(%q) accepted %s: %v", args, a.Name, err)
			}
			if a.Value.IsNil() {
				t.Fatalf("parseAssignments(%q) gave %s a nil value", args, a.Name)
			}
			if seen[a.Name] {
				t.Fatalf("parseAssignments(%q) assigns %s twice", args, a.Name)
			}
			seen[a.Name] = true
			found := false
			for _, arg := range args {
				found = found || strings.HasPrefix(arg, a.Name+"=")
			}
			if !found {
				t.Fatalf("parseAssignments(%q) made up %s", args, a.Name)
			}
			again = append(again, "--type", a.Value.T.String(), a.Name+"="+a.Value.String())
		}
		bs, err := parseAssignments(again)
		if err != nil || len(bs) != len(as) {
			t.Fatalf("parseAssignments(%q) = %v, %v; want %v again", again, bs, err, as)
		}
		for i := range as {
			if bs[i].Name != as[i].Name || !bs[i].Value.Equal(as[i].Value) {
				t.Fatalf("%s=%v written as %q parses to %s=%v", as[i].Name, as[i].Value, again, bs[i].Name, bs[i].Value)
			}
		}
	})
}
