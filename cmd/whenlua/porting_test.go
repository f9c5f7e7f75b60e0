package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
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

// waitRuns waits until job has n finished runs and returns them, newest first.
func (h *home) waitRuns(job string, n int) []whenlua.Run {
	h.t.Helper()
	var runs []whenlua.Run
	waitFor(h.t, fmt.Sprintf("%d runs of %s", n, job), func() bool {
		runs = nil
		_ = json.Unmarshal([]byte(h.ok("log", job, "--json")), &runs)
		return len(runs) >= n
	})
	return runs
}

func TestAVariableNamedSHELLChoosesTheShellOfJobs(t *testing.T) {
	h := newHome(t)
	dir := t.TempDir()
	shell, marker := filepath.Join(dir, "myshell"), filepath.Join(dir, "marker")
	if err := os.WriteFile(shell, []byte("#!/bin/sh\n: > "+marker+"\nexec /bin/sh \"$@\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	h.writeJob("sh.lua", `when("go == '1'", [[ echo "shell: $SHELL" ]], { name = "sh" })`)
	h.start()
	h.ok("set", "SHELL="+shell, "go=1")
	runs := h.waitRuns("sh", 1)
	if out := h.ok("output", fmt.Sprint(runs[0].Serial)); out != "shell: "+shell+"\n" {
		t.Errorf("output %q, want the variable in the environment", out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the script was not run by the shell the variable SHELL names: %v", err)
	}
}

func TestJOBSERIALReadsAsTheLastSerialAndCannotBeSet(t *testing.T) {
	h := newHome(t)
	h.writeJob("s.lua", `when("go == '1'", "true", { name = "s" })`)
	h.start()
	h.fails(1, []string{"get", "JOBSERIAL"})
	if vars := h.ok("vars"); strings.Contains(vars, "JOBSERIAL") {
		t.Errorf("vars before any run: %q", vars)
	}
	h.ok("set", "go=1")
	runs := h.waitRuns("s", 1)
	want := fmt.Sprint(runs[0].Serial)
	if got := h.ok("get", "JOBSERIAL"); got != want+"\n" {
		t.Errorf("get JOBSERIAL = %q, want %s", got, want)
	}
	// vars lists what can be set; JOBSERIAL is the daemon's.
	if vars := h.ok("vars"); strings.Contains(vars, "JOBSERIAL") {
		t.Errorf("vars = %q, want no JOBSERIAL", vars)
	}
	h.fails(1, []string{"set", "JOBSERIAL=7"}, "reserved")
	if got := h.ok("get", "JOBSERIAL"); got != want+"\n" {
		t.Errorf("get JOBSERIAL after a refused set = %q, want %s", got, want)
	}
}

// generations returns the generation of each job file reload prints.
func generations(t *testing.T, out string) map[string]string {
	t.Helper()
	gens := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("reload printed %q", out)
		}
		gens[filepath.Base(f[0])] = f[1]
	}
	return gens
}

func TestReloadForceLoadsAnUnchangedFileAgainAndPlainReloadDoesNot(t *testing.T) {
	h := newHome(t)
	h.writeJob("a.lua", `when("reloaded()", "true", { name = "a" })`)
	h.writeJob("b.lua", `when("reloaded()", "true", { name = "b" })`)
	h.start()
	h.waitRuns("a", 1)
	// Neither a touch nor a plain reload loads an unchanged file.
	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(h.dir, "jobs", "a.lua"), now, now); err != nil {
		t.Fatal(err)
	}
	if g := generations(t, h.ok("reload")); g["a.lua"] != "generation 1" || g["b.lua"] != "generation 1" {
		t.Fatalf("reload after a touch: %v, want both at generation 1", g)
	}
	// --force FILE loads that file again, by name or by path.
	if g := generations(t, h.ok("reload", "--force", "a.lua")); g["a.lua"] != "generation 2" || g["b.lua"] != "generation 1" {
		t.Fatalf("reload --force a.lua: %v, want a at 2, b at 1", g)
	}
	if g := generations(t, h.ok("reload", filepath.Join(h.dir, "jobs", "a.lua"), "--force")); g["a.lua"] != "generation 3" {
		t.Fatalf("reload PATH --force: %v, want a at 3", g)
	}
	// A name without .lua is taken as edit takes it.
	if g := generations(t, h.ok("reload", "--force", "a")); g["a.lua"] != "generation 4" {
		t.Fatalf("reload --force a: %v, want a at 4", g)
	}
	h.waitRuns("a", 4) // reloaded() is true at each load
	// --force alone loads every job file again.
	if g := generations(t, h.ok("reload", "--force")); g["a.lua"] != "generation 5" || g["b.lua"] != "generation 2" {
		t.Fatalf("reload --force: %v, want a at 5, b at 2", g)
	}
	h.fails(2, []string{"reload", "a.lua"}, "only with --force")
	h.fails(1, []string{"reload", "--force", "none.lua"}, "no job file")
	h.fails(1, []string{"reload", "--force", "/etc/passwd"}, "not a job file")
}
