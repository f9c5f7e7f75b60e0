package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	if r := checkRun(t, filepath.Join("..", "..", "testdata", "lua", "jobs.lua")); r.code != 0 || r.stderr != "" {
		t.Errorf("check of a file requiring lib/helpers.lua: %v", r)
	}
}

func TestCheckRefusesAJobNameUsedInTwoFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.lua"), filepath.Join(dir, "b.lua"), filepath.Join(dir, "c.lua")
	os.WriteFile(a, []byte(`when("x", "true", { name = "same" })`+"\n"), 0o600)
	os.WriteFile(b, []byte("-- b\n\nevery('hour', 'true', { name = 'same' })\n"), 0o600)
	os.WriteFile(c, []byte("when(\n"), 0o600)
	r := checkRun(t, a, b, c, filepath.Join(dir, "missing.lua"))
	want := []string{
		b + `:3: job name "same" is already used by ` + a + ":1",
		c + ":1: syntax error at end of file",
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
	t.Parallel()
	if r := checkRun(t); r.code != 2 || !strings.Contains(r.stderr, "FILE...") {
		t.Errorf("check: %v, want exit 2", r)
	}
}

// A file of the jobs directory is checked against the directory's other
// files as the daemon sees them: without a daemon, the files before it in
// name order (the order of a daemon's first load); with one, the jobs it
// has loaded. Paths through a symbolic link are the same files. A file
// elsewhere is checked alone.
func TestCheckOfAJobsDirectoryFileRefusesANameAnotherFileUses(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	jobs := filepath.Join(h.dir, "jobs")
	link := filepath.Join(t.TempDir(), "jobs-link")
	if err := os.Symlink(jobs, link); err != nil {
		t.Fatal(err)
	}
	mine, new := filepath.Join(jobs, "mine.lua"), filepath.Join(jobs, "new.lua")
	h.writeJob("mine.lua", `every("hour", "true", { name = "tick" })`+"\n")
	h.writeJob("new.lua", "-- new\nwhen('x', 'true', { name = 'tick' })\n")
	clash := func(path string) string { return path + `:2: job name "tick" is already used by ` }
	expect := func(when string, args []string, code int, want string) {
		t.Helper()
		r := h.run(append([]string{"check"}, args...)...)
		if r.code != code || !strings.HasPrefix(r.stderr, want) || (want == "" && r.stderr != "") || strings.Count(r.stderr, "\n") > 1 {
			t.Errorf("%s: check %v: %v, want exit %d and %q", when, args, r, code, want)
		}
	}
	elsewhere := filepath.Join(t.TempDir(), "new.lua")
	os.WriteFile(elsewhere, []byte("when('x', 'true', { name = 'tick' })\n"), 0o600)
	for _, when := range []string{"without a daemon", "with a daemon"} {
		if when == "with a daemon" {
			// The daemon loads mine.lua and refuses new.lua.
			h.start()
		}
		expect(when, []string{new}, 1, clash(new)+mine+":1")
		expect(when, []string{mine}, 0, "")
		// In either order, it is new.lua that clashes, once.
		expect(when, []string{new, mine}, 1, clash(new)+mine+":1")
		expect(when, []string{mine, new}, 1, clash(new)+mine+":1")
		// Through the symbolic link: the same files.
		expect(when, []string{filepath.Join(link, "new.lua")}, 1, clash(filepath.Join(link, "new.lua")))
		expect(when, []string{filepath.Join(link, "mine.lua")}, 0, "")
		// A copy elsewhere has nothing to clash with.
		expect(when, []string{elsewhere}, 0, "")
	}
	// A new file that sorts before the loaded one still clashes with it
	// while the daemon runs; without a daemon, the other file would.
	h.writeJob("a-new.lua", "-- a\nwhen('y', 'true', { name = 'tick' })\n")
	aNew := filepath.Join(jobs, "a-new.lua")
	expect("with a daemon", []string{aNew}, 1, clash(aNew)+mine+":1")
	expect("with a daemon", []string{mine}, 0, "")
}

// A 4 MB file of `x = not not ... true` crashed check with a Go stack
// overflow; a sparse 64 GiB file, a FIFO or /dev/zero was read (or waited
// on) without end. Each is now one line naming the file.
func TestCheckRefusesHostileFilesInOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nest := filepath.Join(dir, "nest.lua")
	if err := os.WriteFile(nest, []byte("x = "+strings.Repeat("not ", 1<<20)+"true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.lua")
	if err := os.WriteFile(huge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 64<<30); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.lua")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.lua")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		nest: "source of 4194313 bytes is larger than the limit of 256 KiB",
		huge: "source of 68719476736 bytes is larger than the limit of 256 KiB",
		fifo: "not a regular file (a named pipe)",
		zero: "not a regular file (a character device)",
	} {
		r := checkRun(t, path)
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, path+": ") || !strings.Contains(r.stderr, want) {
			t.Errorf("check %s: %v, want exit 1 and one line %q", path, r, want)
		}
	}
}
