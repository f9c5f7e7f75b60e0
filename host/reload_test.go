package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// fileStatusOf returns the status of the job file named base.
func (te *testEngine) fileStatusOf(base string) (whenlua.FileStatus, bool) {
	for _, f := range te.status().Files {
		if filepath.Base(f.Path) == base {
			return f, true
		}
	}
	return whenlua.FileStatus{}, false
}

func (te *testEngine) hasJob(name string) bool {
	names, err := te.Names(context.Background())
	if err != nil {
		te.t.Fatal(err)
	}
	for _, n := range names {
		if n.Name == name {
			return true
		}
	}
	return false
}

// quiet returns once the watcher has scanned the jobs directory after
// every event before it, so that a count taken after it is final: it writes
// a job file of its own, zz-quiet.lua, and waits for its job, which a scan
// that started after that write loads. Such a scan reads the final content
// of what was edited before.
func (te *testEngine) quiet() {
	te.t.Helper()
	writeFile(te.t, filepath.Join(te.paths.JobsDir, "zz-quiet.lua"), `when("false", "true", {name="quiet"})`)
	te.waitFor("the quiet job", func() bool { return te.hasJob("quiet") })
}

func TestEditsOfAWatchedDirectoryReloadOnceWithTheFinalContent(t *testing.T) {
	t.Parallel()
	const v1 = `when("false", "true", {name="v1"})`
	const v2 = `when("false", "true", {name="v2"})`
	for _, tc := range []struct {
		name     string
		edit     func(t *testing.T, dir, path string)
		compiles uint64 // compiles of j.lua caused by the edit
		job      string // the job present afterwards ("" = none)
	}{
		{"an in-place write", func(t *testing.T, dir, path string) { writeFile(t, path, v2) }, 1, "v2"},
		{"a write in two chunks", func(t *testing.T, dir, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(v2[:10])
			f.Sync()
			time.Sleep(10 * time.Millisecond) // part of the edit: a writer that pauses between chunks
			f.WriteString(v2[10:])
			f.Close()
		}, 1, "v2"},
		{"a temp file renamed over it", func(t *testing.T, dir, path string) {
			tmp := filepath.Join(dir, ".j.lua.tmp")
			writeFile(t, tmp, v2)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}, 1, "v2"},
		{"a vim-style save", func(t *testing.T, dir, path string) {
			if err := os.Rename(path, path+"~"); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, v2)
			os.Remove(path + "~")
		}, 1, "v2"},
		{"sed -i", func(t *testing.T, dir, path string) {
			if out, err := exec.Command("sed", "-i", "s/v1/v2/", path).CombinedOutput(); err != nil {
				t.Fatalf("sed: %v %s", err, out)
			}
		}, 1, "v2"},
		{"a touch without change", func(t *testing.T, dir, path string) {
			now := time.Now().Add(time.Minute)
			os.Chtimes(path, now, now)
		}, 0, "v1"},
		{"a delete", func(t *testing.T, dir, path string) { os.Remove(path) }, 0, ""},
		{"a delete and a re-create", func(t *testing.T, dir, path string) {
			os.Remove(path)
			writeFile(t, path, v2)
		}, 1, "v2"},
		{"the jobs directory removed and re-created", func(t *testing.T, dir, path string) {
			os.RemoveAll(dir)
			time.Sleep(20 * time.Millisecond) // part of the edit: the directory is gone a while
			writeFile(t, path, v2)
		}, 1, "v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := testPaths(t, t.TempDir())
			path := filepath.Join(p.JobsDir, "j.lua")
			writeFile(t, path, v1)
			// Each edit is a burst of events that one debounce collects:
			// a debounce well above the few milliseconds an edit takes,
			// so that a busy machine does not split a burst in two.
			te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), time.Hour, func(o *EngineOptions) { o.Debounce = 250 * time.Millisecond })
			before, _ := te.fileStatusOf("j.lua")
			tc.edit(t, p.JobsDir, path)
			if tc.job != "" {
				te.waitFor("job "+tc.job, func() bool { return te.hasJob(tc.job) })
			} else {
				te.waitFor("no job", func() bool { return !te.hasJob("v1") })
			}
			te.quiet()
			after, ok := te.fileStatusOf("j.lua")
			if tc.job == "" {
				if ok && after.Jobs != 0 {
					t.Fatalf("deleted file still has jobs: %+v", after)
				}
				return
			}
			if got := after.Compiles - before.Compiles; got != tc.compiles {
				t.Fatalf("compiles of j.lua = %d, want %d", got, tc.compiles)
			}
			if tc.job == "v2" && te.hasJob("v1") {
				t.Fatalf("old job v1 still loaded")
			}
		})
	}
}

func TestABrokenEditKeepsThePreviousVersionFiring(t *testing.T) {
	p := testPaths(t, t.TempDir())
	path := filepath.Join(p.JobsDir, "j.lua")
	writeFile(t, path, `when("changes('x')", "true", {name="c"})`)
	te := openTestEngineWith(t, p, NewFakeClock(testEpoch), time.Hour)
	writeFile(t, path, "when(\"changes('x')\", \"true\", {name=\"c\"})\nwhen(\"x\", \"true\", {nmae=\"typo\"})\n")
	te.waitFor("the load error", func() bool { f, _ := te.fileStatusOf("j.lua"); return f.Error != "" })
	f, _ := te.fileStatusOf("j.lua")
	if want := path + ":2:"; len(f.Error) < len(want) || f.Error[:len(want)] != want {
		t.Fatalf("status error = %q, want it to start with %q", f.Error, want)
	}
	if f.Generation != 1 || f.Jobs != 1 {
		t.Fatalf("active version changed: %+v", f)
	}
	if got := te.set("x", 1); countOf(got, "c") != 1 {
		t.Fatalf("the previous version's job did not fire: %v", got)
	}
	writeFile(t, path, `when("changes('x')", "true", {name="c"}) when("x", "true", {name="fixed"})`)
	te.waitFor("the fixed version", func() bool { return te.hasJob("fixed") })
	f, _ = te.fileStatusOf("j.lua")
	if f.Error != "" || f.Generation != 2 {
		t.Fatalf("after the fix: %+v", f)
	}
	te.waitIdle()
}

func TestARunOfAnOldVersionFinishesWithItsOwnPostHookAndThenItsStateCloses(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	p := testPaths(t, t.TempDir())
	path := filepath.Join(p.JobsDir, "j.lua")
	src := func(v string) string {
		return `when("changes('x')", "` + blockingScript(gate) + `", {name="j", post=function(r) set("post_by", "` + v + `") end})`
	}
	writeFile(t, path, src("v1"))
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	te.set("x", 1)
	writeFile(t, path, src("v2"))
	te.reload()
	f, _ := te.fileStatusOf("j.lua")
	if f.Generation != 2 || f.OldRuns != 1 {
		t.Fatalf("after the reload: %+v, want generation 2 with 1 run held by the old one", f)
	}
	var old *generation
	te.do(context.Background(), func() { old = te.st.files[path].old[0] })
	writeFile(t, gate, "")
	te.waitIdle()
	if v := te.get("post_by"); v.S != "v1" {
		t.Fatalf("post hook of %q ran, want v1's", v.S)
	}
	var closed bool
	te.do(context.Background(), func() { closed = old.closed && old.file.Closed() })
	if !closed {
		t.Fatal("version 1's state is not closed after its last run")
	}
	if f, _ := te.fileStatusOf("j.lua"); f.OldRuns != 0 {
		t.Fatalf("old runs still counted: %+v", f)
	}
}

func TestAnUnchangedJobDoesNotReFireWhenItsFileIsRewritten(t *testing.T) {
	p := testPaths(t, t.TempDir())
	path := filepath.Join(p.JobsDir, "j.lua")
	writeFile(t, path, `when("x >= 6", "true", {name="level"})`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	te.set("x", 7)
	writeFile(t, path, `when("x >= 6", "true", {name="level"}) when("x >= 100", "true", {name="other"})`)
	te.reload()
	te.idleRuns("level", 1, "a reload re-fired it")
	// A changed condition starts afresh.
	writeFile(t, path, `when("x >= 5", "true", {name="level"})`)
	te.reload()
	te.idleRuns("level", 2, "the changed condition did not start afresh")
}

func TestChangingALibModuleReloadsExactlyItsUsers(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, filepath.Join(p.LibDir, "util.lua"), `return {threshold = 5}`)
	writeFile(t, filepath.Join(p.JobsDir, "user.lua"), `local u = require "util" when("x >= " .. u.threshold, "true", {name="user"})`)
	writeFile(t, filepath.Join(p.JobsDir, "other.lua"), `when("y", "true", {name="other"})`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	u0, _ := te.fileStatusOf("user.lua")
	o0, _ := te.fileStatusOf("other.lua")
	writeFile(t, filepath.Join(p.LibDir, "util.lua"), `return {threshold = 7}`)
	te.reload()
	u1, _ := te.fileStatusOf("user.lua")
	o1, _ := te.fileStatusOf("other.lua")
	if u1.Compiles != u0.Compiles+1 || o1.Compiles != o0.Compiles {
		t.Fatalf("compiles: user %d->%d, other %d->%d; want user +1, other +0", u0.Compiles, u1.Compiles, o0.Compiles, o1.Compiles)
	}
	names, _ := te.Names(context.Background())
	for _, n := range names {
		if n.Name == "user" && n.Cond != "x >= 7" {
			t.Fatalf("user's condition = %q, want the new threshold", n.Cond)
		}
	}
}

func TestChangingOneOfAThousandFilesRecompilesOnlyIt(t *testing.T) {
	p := testPaths(t, t.TempDir())
	for i := range 1000 {
		writeFile(t, filepath.Join(p.JobsDir, fmt.Sprintf("f%04d.lua", i)), fmt.Sprintf(`when("v%d == 1", "true", {name="j%d"})`, i, i))
	}
	te := openTestEngineWith(t, p, NewFakeClock(testEpoch), time.Hour)
	before := te.status().Compiles
	if before != 1000 {
		t.Fatalf("compiles at start = %d, want 1000", before)
	}
	writeFile(t, filepath.Join(p.JobsDir, "f0500.lua"), `when("v500 == 2", "true", {name="j500b"})`)
	te.waitFor("the edit", func() bool { return te.hasJob("j500b") })
	te.quiet()
	q, _ := te.fileStatusOf("zz-quiet.lua")
	if got := te.status().Compiles - before - q.Compiles; got != 1 {
		t.Fatalf("files recompiled for one edit = %d, want 1", got)
	}
}

func TestAFileRefusedForATakenJobNameLoadsOnceTheOtherFileIsGone(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, filepath.Join(p.JobsDir, "a.lua"), `when("x", "true", {name="dup"})`)
	writeFile(t, filepath.Join(p.JobsDir, "b.lua"), `when("y", "true", {name="dup"})`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	if f, _ := te.fileStatusOf("b.lua"); !strings.Contains(f.Error, "already used") {
		t.Fatalf("b.lua = %+v, want refused for the taken name", f)
	}
	os.Remove(filepath.Join(p.JobsDir, "a.lua"))
	te.reload()
	f, _ := te.fileStatusOf("b.lua")
	if f.Error != "" || f.Jobs != 1 {
		t.Fatalf("b.lua after a.lua went away = %+v, want loaded", f)
	}
	names, _ := te.Names(context.Background())
	if len(names) != 1 || names[0].Cond != "y" {
		t.Fatalf("jobs = %+v, want b.lua's dup", names)
	}
	// In one scan: a.lua comes back with the name while b.lua holds it.
	writeFile(t, filepath.Join(p.JobsDir, "a.lua"), `when("x", "true", {name="dup"})`)
	os.Remove(filepath.Join(p.JobsDir, "b.lua"))
	te.reload()
	if f, _ := te.fileStatusOf("a.lua"); f.Error != "" || f.Jobs != 1 {
		t.Fatalf("a.lua, taking the name of b.lua removed in the same scan = %+v", f)
	}
}
