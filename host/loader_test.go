package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

func TestJobNamesSwappedBetweenTwoFilesLoadOnceBothEditsAreThere(t *testing.T) {
	p := testPaths(t, t.TempDir())
	a, b := filepath.Join(p.JobsDir, "a.lua"), filepath.Join(p.JobsDir, "b.lua")
	writeFile(t, a, `when("ax", "true", {name="x"})`)
	writeFile(t, b, `when("by", "true", {name="y"})`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	writeFile(t, a, `when("ay", "true", {name="y"})`)
	te.reload()
	if f, _ := te.fileStatusOf("a.lua"); !strings.Contains(f.Error, `job name "y" is already used by `+b+":1") || f.Generation != 1 {
		t.Fatalf("a.lua taking b.lua's name: %+v, want refused with generation 1 active", f)
	}
	writeFile(t, b, `when("bx", "true", {name="x"})`)
	te.reload()
	for _, base := range []string{"a.lua", "b.lua"} {
		if f, _ := te.fileStatusOf(base); f.Error != "" || f.Generation != 2 {
			t.Fatalf("%s after both edits: %+v, want its new version active", base, f)
		}
	}
	names, _ := te.Names(context.Background())
	got := map[string]string{}
	for _, n := range names {
		got[n.Name] = filepath.Base(n.File) + ":" + n.Cond
	}
	if got["x"] != "b.lua:bx" || got["y"] != "a.lua:ay" || len(got) != 2 {
		t.Fatalf("jobs = %v, want x from b.lua and y from a.lua", got)
	}
}

func TestAJobMovedToAnotherFileKeepsItsEdgeState(t *testing.T) {
	p := testPaths(t, t.TempDir())
	a, b := filepath.Join(p.JobsDir, "a.lua"), filepath.Join(p.JobsDir, "b.lua")
	writeFile(t, a, `when("x == 1", "true", {name="level"})`+"\n"+`when("z == 1", "true", {name="stay"})`)
	writeFile(t, b, `when("y == 1", "true", {name="other"})`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	te.set("x", 1)
	// Its text moves from a.lua to b.lua; both saved before one rescan.
	writeFile(t, a, `when("z == 1", "true", {name="stay"})`)
	writeFile(t, b, `when("y == 1", "true", {name="other"})`+"\n"+`when("x == 1", "true", {name="level"})`)
	te.reload()
	if f, _ := te.fileStatusOf("b.lua"); f.Jobs != 2 {
		t.Fatalf("b.lua: %+v", f)
	}
	te.idleRuns("level", 1, "moving it re-fired it")
}

func TestRenamingAJobFileDoesNotReFireItsJobs(t *testing.T) {
	p := testPaths(t, t.TempDir())
	a := filepath.Join(p.JobsDir, "a.lua")
	writeFile(t, a, `when("x == 1", "true", {name="level"})`)
	te := openTestEngineWith(t, p, NewFakeClock(testEpoch), time.Hour)
	te.set("x", 1)
	te.waitIdle()
	if err := os.Rename(a, filepath.Join(p.JobsDir, "b.lua")); err != nil {
		t.Fatal(err)
	}
	te.waitFor("b.lua loaded", func() bool {
		f, ok := te.fileStatusOf("b.lua")
		_, aThere := te.fileStatusOf("a.lua")
		return ok && f.Jobs == 1 && !aThere
	})
	te.idleRuns("level", 1, "the rename re-fired it")
}

func TestARequireInsideAConditionIsADependencyOfItsFile(t *testing.T) {
	p := testPaths(t, t.TempDir())
	mod := filepath.Join(p.LibDir, "limits.lua")
	writeFile(t, mod, `return {max = 5}`)
	writeFile(t, filepath.Join(p.JobsDir, "late.lua"), `
when(function() return (vars.n or 0) > require("limits").max end, "true", {name="over"})
on_load(function() require("hooks") end)
`)
	writeFile(t, filepath.Join(p.LibDir, "hooks.lua"), `return {}`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	te.set("n", 1)
	f, _ := te.fileStatusOf("late.lua")
	want := []string{filepath.Join(p.LibDir, "hooks.lua"), mod}
	if !slices.Equal(f.Requires, want) {
		t.Fatalf("requires = %q, want %q", f.Requires, want)
	}
	writeFile(t, mod, `return {max = 0}`)
	te.reload()
	g, _ := te.fileStatusOf("late.lua")
	if g.Compiles != f.Compiles+1 || g.Generation != f.Generation+1 {
		t.Fatalf("after the module changed: %+v, want late.lua reloaded (was %+v)", g, f)
	}
	// The new version's condition reads the new module: n=1 is over 0.
	te.idleRuns("over", 1, "the new version reads the old module")
}

// signalHandler is a slog handler that closes ch at the first record whose
// message is msg.
type signalHandler struct {
	slog.Handler
	msg string
	ch  chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case <-h.ch:
		default:
			close(h.ch)
		}
	}
	return nil
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func TestSetsAreServedWhileAFileLoads(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, filepath.Join(p.JobsDir, "a.lua"), `when("go == true", "true", {name="a"})`)
	loading := make(chan struct{})
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), -1, func(o *EngineOptions) {
		o.Logger = slog.New(signalHandler{Handler: slog.DiscardHandler, msg: "waiting for go", ch: loading})
	})
	// The top level runs until a set it cannot make itself: only a set
	// served while it runs ends it within the time limit.
	writeFile(t, filepath.Join(p.JobsDir, "slow.lua"), `
log("waiting for go")
while get("go") ~= true do end
when("go == true", "true", {name="slow"})
`)
	reloaded := make(chan whenlua.Status, 1)
	go func() {
		s, err := te.Reload(context.Background(), whenlua.ReloadRequest{})
		if err != nil {
			t.Error(err)
		}
		reloaded <- s
	}()
	select {
	case <-loading:
	case <-time.After(60 * time.Second):
		t.Fatal("slow.lua never began to load")
	}
	if got := te.set("go", true); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("set go=true while slow.lua loads triggered %v, want [a]", got)
	}
	<-reloaded
	if f, _ := te.fileStatusOf("slow.lua"); f.Error != "" || f.Jobs != 1 {
		t.Fatalf("slow.lua: %+v, want loaded: the set was served while its top level ran", f)
	}
}

func TestEditsOfASymlinkedJobFilesTargetAreSeenByEvents(t *testing.T) {
	p := testPaths(t, t.TempDir())
	elsewhere := t.TempDir()
	target := filepath.Join(elsewhere, "real.lua")
	writeFile(t, target, `when("false", "true", {name="v1"})`)
	if err := os.Symlink(target, filepath.Join(p.JobsDir, "link.lua")); err != nil {
		t.Fatal(err)
	}
	// The poll is an hour away: only events can show the edits.
	te := openTestEngineWith(t, p, NewFakeClock(testEpoch), time.Hour)
	if !te.hasJob("v1") {
		t.Fatal("the symlinked file did not load")
	}
	writeFile(t, target, `when("false", "true", {name="v2"})`)
	te.waitFor("the target's edit", func() bool { return te.hasJob("v2") })
	// A dangling link is a file gone.
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	te.waitFor("the dangling link unloaded", func() bool { return !te.hasJob("v2") })
}

func TestOtherFilesWrittenInTheJobsDirectoryDoNotHoldOffAReload(t *testing.T) {
	t.Parallel()
	p := testPaths(t, t.TempDir())
	path := filepath.Join(p.JobsDir, "j.lua")
	writeFile(t, path, `when("false", "true", {name="v1"})`)
	// A debounce far longer than the gaps between the writes below.
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), time.Hour, func(o *EngineOptions) { o.Debounce = time.Second })
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		f, err := os.OpenFile(filepath.Join(p.JobsDir, "notes.txt"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		// Faster than the debounce, for as long as the test runs.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				f.WriteString("x\n")
			}
		}
	}()
	defer func() { close(stop); <-wrote }()
	writeFile(t, path, `when("false", "true", {name="v2"})`)
	te.waitFor("the edit", func() bool { return te.hasJob("v2") })
}

func TestADaemonServesSetsWhileRunawayFilesLoad(t *testing.T) {
	t.Parallel()
	p := daemonHome(t)
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	// Events only; the poll is an hour away.
	loading := make(chan struct{})
	// No memory limit: beside the parallel tests the process-wide heap it
	// measures would be charged to these loads.
	startDaemonWith(t, p, EngineOptions{PollEvery: time.Hour, Grace: 200 * time.Millisecond, LuaMemoryLimit: -1},
		slog.New(signalHandler{Handler: slog.DiscardHandler, msg: "waiting for go", ch: loading}))
	c := whenlua.Dial(p.Socket)
	defer c.Close()
	ctx := context.Background()
	// Five files that loop until the time limit, and one that loops until a
	// set it cannot make itself arrives: it loads only if sets are served
	// while files load.
	for i := range 5 {
		writeFile(t, filepath.Join(p.JobsDir, fmt.Sprintf("spin%d.lua", i)), "while true do end\n")
	}
	writeFile(t, filepath.Join(p.JobsDir, "wait.lua"), "log('waiting for go')\nwhile get('go') ~= true do end\nwhen('go', 'true', {name='waited'})\n")
	// The five files before it have run out of time: the set comes while
	// wait.lua runs.
	select {
	case <-loading:
	case <-time.After(60 * time.Second):
		t.Fatal("wait.lua never began to load")
	}
	if _, err := c.Set(ctx, whenlua.SetRequest{Assignments: []whenlua.Assignment{{Name: "go", Value: whenlua.Bool(true)}}}); err != nil {
		t.Fatal(err)
	}
	v, err := c.Get(ctx, "go")
	if err != nil || !v.Equal(whenlua.Bool(true)) {
		t.Fatalf("get go = %v, %v", v, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		loaded, spinning := false, 0
		for _, f := range s.Files {
			switch {
			case filepath.Base(f.Path) == "wait.lua" && f.Jobs == 1:
				loaded = true
			case strings.HasPrefix(filepath.Base(f.Path), "spin") && strings.Contains(f.Error, filepath.Base(f.Path)+":1: time limit"):
				spinning++
			}
		}
		if loaded && spinning == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files: %+v; want wait.lua loaded and five time-limit errors at spinN.lua:1", s.Files)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
