package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checkRun runs `whenlua check args...` with no home: check needs none.
func checkRun(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, exec.Command(bin, append([]string{"check"}, args...)...))
}

// Every fixture in testdata/lua/bad starts with "-- want: FILE[:LINE]: MSG":
// check prints one line on stderr starting with the path given and the
// line, containing MSG, and exits 1.
func TestCheckPrintsFileAndLineOfEachBadFixture(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "lua", "bad")
	paths, err := filepath.Glob(filepath.Join(dir, "*.lua"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(src), "\n")
		want, ok := strings.CutPrefix(first, "-- want: ")
		if !ok {
			t.Fatalf("%s has no want line", path)
		}
		loc, msg, _ := strings.Cut(want, ": ")
		t.Run(strings.TrimSuffix(filepath.Base(path), ".lua")+" is reported at "+loc, func(t *testing.T) {
			t.Parallel()
			r := checkRun(t, path)
			if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("check %s: %v, want exit 1 and one line on stderr", path, r)
			}
			if prefix := filepath.Join(dir, loc) + ": "; !strings.HasPrefix(r.stderr, prefix) {
				t.Errorf("stderr %q does not start with %q", r.stderr, prefix)
			}
			if !strings.Contains(r.stderr, msg) {
				t.Errorf("stderr %q does not contain %q", r.stderr, msg)
			}
		})
	}
}

func TestCheckPassesEveryExample(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.lua"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			if r := checkRun(t, path); r.code != 0 || r.stdout != "" || r.stderr != "" {
				t.Errorf("check %s: %v", path, r)
			}
		})
	}
	t.Run("all together, as in one jobs directory", func(t *testing.T) {
		if r := checkRun(t, paths...); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("check %v: %v", paths, r)
		}
	})
}

func TestCheckRequiresFromTheLibNextToTheFile(t *testing.T) {
	if r := checkRun(t, filepath.Join("..", "..", "testdata", "lua", "jobs.lua")); r.code != 0 || r.stderr != "" {
		t.Errorf("check of a file requiring lib/helpers.lua: %v", r)
	}
}

func TestCheckRefusesAJobNameUsedInTwoFiles(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.lua"), filepath.Join(dir, "b.lua"), filepath.Join(dir, "c.lua")
	os.WriteFile(a, []byte(`when("x", "true", { name = "same" })`+"\n"), 0o600)
	os.WriteFile(b, []byte("-- b\n\nevery('hour', 'true', { name = 'same' })\n"), 0o600)
	os.WriteFile(c, []byte("when(\n"), 0o600)
	r := checkRun(t, a, b, c, filepath.Join(dir, "missing.lua"))
	want := []string{
		b + `:3: job name "same" is already used by ` + a + ":1",
		c + ": syntax error at end of file",
		filepath.Join(dir, "missing.lua") + ": no such file or directory",
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != 1 || r.stdout != "" || len(lines) != len(want) {
		t.Fatalf("check: %v, want exit 1 and %d lines", r, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want %q", i+1, lines[i], w)
		}
	}
	// The same file twice is one file.
	if r := checkRun(t, a, a); r.code != 0 {
		t.Errorf("check a a: %v", r)
	}
}

func TestCheckWithoutFilesIsAUsageError(t *testing.T) {
	if r := checkRun(t); r.code != 2 || !strings.Contains(r.stderr, "FILE...") {
		t.Errorf("check: %v, want exit 2", r)
	}
}

// A file of the jobs directory is checked against the directory's other
// files, as the daemon would load it: those the daemon has loaded, or,
// without a daemon, those that load. A file elsewhere is checked alone.
func TestCheckOfAJobsDirectoryFileRefusesANameAnotherFileUses(t *testing.T) {
	h := newHome(t)
	jobs := filepath.Join(h.dir, "jobs")
	mine, new := filepath.Join(jobs, "mine.lua"), filepath.Join(jobs, "new.lua")
	h.writeJob("mine.lua", `every("hour", "true", { name = "tick" })`+"\n")
	h.writeJob("new.lua", "-- new\nwhen('x', 'true', { name = 'tick' })\n")
	want := new + `:2: job name "tick" is already used by ` + mine + ":1"
	check := func(when string) {
		t.Helper()
		r := h.run("check", new)
		if r.code != 1 || strings.TrimSpace(r.stderr) != want {
			t.Errorf("%s: check: %v, want exit 1 and %q", when, r, want)
		}
		// Checked together, the two files clash the same way, once.
		r = h.run("check", mine, new)
		if r.code != 1 || strings.TrimSpace(r.stderr) != want {
			t.Errorf("%s: check mine new: %v, want exit 1 and %q", when, r, want)
		}
		// The same file outside the jobs directory has nothing to clash with.
		elsewhere := filepath.Join(t.TempDir(), "new.lua")
		os.WriteFile(elsewhere, []byte("when('x', 'true', { name = 'tick' })\n"), 0o600)
		if r := h.run("check", elsewhere); r.code != 0 {
			t.Errorf("%s: check of a copy elsewhere: %v", when, r)
		}
	}
	check("without a daemon")
	// Without a daemon neither file is the active one: mine.lua clashes too.
	if r := h.run("check", mine); r.code != 1 || !strings.Contains(r.stderr, `job name "tick" is already used by `+new+":2") {
		t.Errorf("without a daemon: check mine: %v, want the clash with new.lua", r)
	}
	h.start()
	// The daemon loaded mine.lua and refused new.lua; check says why.
	check("with a daemon")
	// mine.lua is what the daemon has loaded: it does not clash with itself.
	if r := h.run("check", mine); r.code != 0 {
		t.Errorf("with a daemon: check mine: %v", r)
	}
}
