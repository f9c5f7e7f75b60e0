package main

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

func TestReorderArgs(t *testing.T) {
	t.Parallel()
	app := newApp(&env{stdout: io.Discard, stderr: io.Discard})
	cases := []struct{ name, in, want string }{
		{"a flag after the argument moves in front of it", "history n -n 5", "history -n 5 n"},
		{"a flag with = stays one argument", "history n -n=5", "history -n=5 n"},
		{"a bool flag takes no value", "log --json job -n 3", "log --json -n 3 job"},
		{"a global flag after the command moves before it", "vars --home /h --json", "--home /h vars --json"},
		{"arguments after -- are left alone", "get -- -n 5", "get -- -n 5"},
		{"subcommands are found", "daemon status --json", "daemon status --json"},
		{"set keeps its order and gives up only global flags", "set a=1 --type int --home /h n=2", "--home /h set a=1 --type int n=2"},
		{"an unknown command is left alone", "frob -x y", "frob -x y"},
		{"leading global flags stay", "--home /h history n -n 1", "--home /h history -n 1 n"},
		{"a help flag drops the arguments", "history n -n 1 -h", "history -n 1 -h"},
		{"a help flag after -- is an argument", "get -- -h", "get -- -h"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := reorderArgs(app, append([]string{"whenlua"}, strings.Fields(c.in)...))
			want := append([]string{"whenlua"}, strings.Fields(c.want)...)
			if !slices.Equal(got, want) {
				t.Errorf("%q -> %q, want %q", c.in, got[1:], want[1:])
			}
		})
	}
}

func TestParseAssignments(t *testing.T) {
	t.Parallel()
	got, err := parseAssignments([]string{"s=a=b", "--type", "int", "i=-3", "j=0x10", "--type=float", "f=1e3", "-t", "bool", "b=no", "--type", "string", "e="})
	if err != nil {
		t.Fatal(err)
	}
	want := []whenlua.Assignment{
		{Name: "s", Value: whenlua.String("a=b")},
		{Name: "i", Value: whenlua.Int(-3)},
		{Name: "j", Value: whenlua.Int(16)},
		{Name: "f", Value: whenlua.Float(1000)},
		{Name: "b", Value: whenlua.Bool(false)},
		{Name: "e", Value: whenlua.String("")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !got[i].Value.Equal(want[i].Value) {
			t.Errorf("pair %d: %v, want %v", i, got[i], want[i])
		}
	}

	for _, c := range []struct {
		args  []string
		usage bool
	}{
		{[]string{}, true},
		{[]string{"noequals"}, true},
		{[]string{"--type"}, true},
		{[]string{"--type", "complex", "a=1"}, true},
		{[]string{"--frob", "a=1"}, true},
		{[]string{"=1"}, false},
		{[]string{"--type", "int", "n=1.5"}, false},
		{[]string{"a=1", "a=2"}, false},
		{[]string{"JOBNAME=x"}, false},
	} {
		_, err := parseAssignments(c.args)
		var ee *exitError
		isUsage := errors.As(err, &ee) && ee.code == 2
		if err == nil || isUsage != c.usage || (!c.usage && !errors.Is(err, whenlua.ErrInvalid)) {
			t.Errorf("%q: err %v, usage error %v, want usage error %v", c.args, err, isUsage, c.usage)
		}
	}
}
