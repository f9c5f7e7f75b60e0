package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVariablesNamedHAndHelpAreReadLikeAnyOtherEvenAfterDashDash(t *testing.T) {
	h := newHome(t)
	h.start()
	h.ok("set", "h=one", "help=two")
	for _, args := range [][]string{
		{"get", "h"}, {"get", "--", "h"},
	} {
		if got := h.ok(args...); got != "one\n" {
			t.Errorf("whenlua %s printed %q, want one", strings.Join(args, " "), got)
		}
	}
	for _, args := range [][]string{
		{"get", "help"}, {"get", "--", "help"},
	} {
		if got := h.ok(args...); got != "two\n" {
			t.Errorf("whenlua %s printed %q, want two", strings.Join(args, " "), got)
		}
	}
	for _, args := range [][]string{
		{"history", "h"}, {"history", "--", "h"}, {"history", "h", "-n", "1"},
	} {
		if got := h.ok(args...); !strings.HasSuffix(got, "\tcli\tone\n") || strings.Count(got, "\n") != 1 {
			t.Errorf("whenlua %s printed %q, want h's one version", strings.Join(args, " "), got)
		}
	}
	h.ok("unset", "h")
	h.fails(1, []string{"get", "h"})
	// A flag is still a flag, wherever it stands before --.
	for _, args := range [][]string{{"get", "-h"}, {"get", "h", "--help"}, {"history", "h", "-h"}} {
		if got := h.ok(args...); !strings.Contains(got, "USAGE:") || !strings.Contains(got, "whenlua "+args[0]) {
			t.Errorf("whenlua %s printed %q, want the command's help", strings.Join(args, " "), got)
		}
	}
}

func TestCheckWarnsOfAHelperGivenABareNameAndStillPasses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ld.lua")
	if err := os.WriteFile(path, []byte("local n = 'x'\nwhen(\"changes(ld)\", \"true\", {name = 'ld'})\nwhen(function() return changes(n) end, 'true')\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := checkRun(t, path)
	want := path + ":2: warning: changes(ld) takes the value of variable ld as the name to look at; to name the variable ld, quote it: changes('ld')\n"
	if r.code != 0 || r.stdout != "" || r.stderr != want {
		t.Fatalf("check: %v, want exit 0 and %q", r, want)
	}
}
