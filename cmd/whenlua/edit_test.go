package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// editor writes a shell script standing in for $EDITOR and returns its path.
func editor(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "editor")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nset -e\n"+script+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// edit runs `whenlua edit args...` with $EDITOR set (and $VISUAL unset)
// and stdin not a terminal.
func (h *home) edit(editorPath string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := h.command(ctx, append([]string{"edit"}, args...)...)
	var env []string
	for _, kv := range cmd.Env {
		if !strings.HasPrefix(kv, "VISUAL=") && !strings.HasPrefix(kv, "EDITOR=") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	// Kept copies go to a directory the test removes.
	cmd.Env = append(env, "EDITOR="+editorPath, "TMPDIR="+h.t.TempDir())
	return runCmd(h.t, cmd)
}

func (h *home) readJob(name string) string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, "jobs", name))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

const helloJob = `when("x == 1", [[ echo "x is $x" ]], { name = "hello" })
`

func TestEditInstallsAValidEditAndTheDaemonActivatesIt(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", helloJob)
	h.start()
	if out := h.ok("test", "--type", "int", "x=1"); out != "hello\n" {
		t.Fatalf("before the edit, test x=1: %q", out)
	}
	r := h.edit(editor(t, `sed -i 's/x == 1/x == 2/' "$1"`), "demo")
	target := filepath.Join(h.dir, "jobs", "demo.lua")
	if r.code != 0 || r.stderr != "" || r.stdout != "installed "+target+": active, generation 2, 1 job\n" {
		t.Fatalf("edit: %v", r)
	}
	if got := h.readJob("demo.lua"); got != strings.Replace(helloJob, "x == 1", "x == 2", 1) {
		t.Errorf("installed content %q", got)
	}
	if out := h.ok("test", "--type", "int", "x=2"); out != "hello\n" {
		t.Errorf("after the edit, test x=2: %q", out)
	}
	if out := h.ok("test", "--type", "int", "x=1"); out != "" {
		t.Errorf("after the edit, test x=1: %q", out)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("installed file: %v, %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Join(h.dir, "jobs"))
	for _, de := range entries {
		if strings.HasPrefix(de.Name(), ".") {
			t.Errorf("temporary file %s left in the jobs directory", de.Name())
		}
	}
}

func TestEditRefusesAnEditThatDoesNotLoad(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", helloJob)
	h.start()
	r := h.edit(editor(t, `printf 'when("x == 1", "true")\nif then\n' > "$1"`), "demo.lua")
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("edit: %v, want exit 1", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stderr %q, want the error and the message", r.stderr)
	}
	// The error names the edited copy, at the line of the mistake.
	m := regexp.MustCompile(`^(/\S+/demo\.lua):2: syntax error`).FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("error line %q is not COPY:2: syntax error", lines[0])
	}
	copyPath := m[1]
	if !strings.Contains(lines[1], "not changed") || !strings.Contains(lines[1], "kept at "+copyPath) {
		t.Errorf("message %q does not keep the copy %s", lines[1], copyPath)
	}
	if kept, err := os.ReadFile(copyPath); err != nil || !strings.Contains(string(kept), "if then") {
		t.Errorf("the edited copy: %q, %v", kept, err)
	}
	if got := h.readJob("demo.lua"); got != helloJob {
		t.Errorf("the original changed: %q", got)
	}
	if out := h.ok("test", "--type", "int", "x=1"); out != "hello\n" {
		t.Errorf("the daemon's version changed: test x=1: %q", out)
	}
}

func TestEditRefusesAJobNameOfAnotherFile(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", helloJob)
	h.writeJob("other.lua", "\nevery('hour', 'true', { name = 'taken' })\n")
	for _, daemon := range []bool{false, true} {
		if daemon {
			h.start()
		}
		r := h.edit(editor(t, `echo 'every("day", "true", { name = "taken" })' >> "$1"`), "demo")
		if r.code != 1 || !strings.Contains(r.stderr, `demo.lua:2: job name "taken" is already used by `+filepath.Join(h.dir, "jobs", "other.lua")+":2") {
			t.Errorf("daemon %v: edit adding a taken name: %v", daemon, r)
		}
		if got := h.readJob("demo.lua"); got != helloJob {
			t.Errorf("daemon %v: the original changed: %q", daemon, got)
		}
	}
}

func TestEditCreatesANewFile(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", helloJob)
	h.start()
	r := h.edit(editor(t, `test ! -s "$1"; echo 'when("y > 3", "true", { name = "fresh" })' > "$1"`), "new")
	target := filepath.Join(h.dir, "jobs", "new.lua")
	if r.code != 0 || r.stdout != "installed "+target+": active, generation 1, 1 job\n" {
		t.Fatalf("edit new: %v", r)
	}
	if names := h.ok("names"); !strings.Contains(names, "fresh\twhen\ty > 3\t"+target+":1") {
		t.Errorf("names after creating new.lua:\n%s", names)
	}
}

func TestEditWithoutChangesInstallsNothing(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", helloJob)
	target := filepath.Join(h.dir, "jobs", "demo.lua")
	before, _ := os.Stat(target)
	// Without FILE, the only job file is edited.
	if r := h.edit(editor(t, "true")); r.code != 0 || r.stdout != "no changes: "+target+" left as it was\n" {
		t.Errorf("edit without changes: %v", r)
	}
	if after, _ := os.Stat(target); !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the file was rewritten")
	}
	if r := h.edit(editor(t, "true"), "nothing"); r.code != 0 || !strings.Contains(r.stdout, "not created") {
		t.Errorf("edit of a new file left empty: %v", r)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "jobs", "nothing.lua")); err == nil {
		t.Errorf("nothing.lua was created")
	}
}

func TestEditWithoutADaemonInstallsForTheNextStart(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", helloJob)
	r := h.edit(editor(t, `sed -i 's/hello/howdy/' "$1"`), "demo")
	if r.code != 0 || !strings.Contains(r.stdout, "no daemon is running") {
		t.Fatalf("edit without a daemon: %v", r)
	}
	h.start()
	if out := h.ok("test", "--type", "int", "x=1"); out != "howdy\n" {
		t.Errorf("after a start, test x=1: %q", out)
	}
}

func TestEditNamesItsFile(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	ed := editor(t, "true")
	if r := h.edit(ed); r.code != 2 || !strings.Contains(r.stderr, "holds no job file") {
		t.Errorf("edit in an empty jobs directory: %v", r)
	}
	h.writeJob("a.lua", "")
	h.writeJob("b.lua", "")
	if r := h.edit(ed); r.code != 2 || !strings.Contains(r.stderr, "2 job files (a.lua, b.lua)") {
		t.Errorf("edit with two job files: %v", r)
	}
	for _, bad := range []string{"../x", "lib/x", ".hidden", "a", "b"} {
		r := h.edit(ed, bad)
		if wantOK := bad == "a" || bad == "b"; (r.code == 0) != wantOK {
			t.Errorf("edit %s: %v", bad, r)
		}
	}
	if r := h.edit(editor(t, "exit 3"), "a"); r.code != 1 || !strings.Contains(r.stderr, "exit status 3") {
		t.Errorf("a failing editor: %v", r)
	}
}
