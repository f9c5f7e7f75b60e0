package luaapi

import (
	"runtime"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// hookHost is a fakeHost that calls get, when set, on each variable read,
// on the reading call's goroutine.
type hookHost struct {
	*fakeHost
	get func()
}

func (h *hookHost) Get(name string) whenlua.Value {
	if h.get != nil {
		h.get()
	}
	return h.fakeHost.Get(name)
}

// collectAndLook has w look after each of three garbage collections, as
// its timer would during a longer call.
func collectAndLook(w *watch) {
	for range 3 {
		runtime.GC()
		w.look()
	}
}

// loadAside loads src on a goroutine of its own, as the loader does beside
// a running call, and waits for it.
func loadAside(t *testing.T, src string, opts Options) error {
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err = loadSrc(t, src, opts)
	}()
	<-done
	return err
}

// watchedCondition loads a file whose one condition, c, reads x under a
// memory limit, after a collection; h.get runs while it evaluates.
func watchedCondition(t *testing.T, limit int64) (*hookHost, *File) {
	t.Helper()
	runtime.GC()
	h := &hookHost{fakeHost: newFakeHost(nil)}
	cond, err := loadSrc(t, `when(function() return vars.x == 1 end, "true", {name = "c"})`,
		Options{Host: h, Timeout: time.Minute, MemoryLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	return h, cond
}

// A file's top level loads on another goroutine while a condition runs: what
// the load builds and keeps is not charged to the condition, neither while
// the load runs nor after it.
func TestALoadBesideACallIsNotChargedToTheCall(t *testing.T) {
	const limit = 48 << 20
	h, cond := watchedCondition(t, limit)
	var loadErr error
	h.get = func() {
		w := cond.s.watch // the condition's, running
		collectAndLook(w) // its first look and baseline
		// The load builds 70 MiB and keeps it, under its own larger limit,
		// and reads a variable while it holds it.
		lh := &hookHost{fakeHost: newFakeHost(nil), get: func() { collectAndLook(w) }}
		loadErr = loadAside(t, `big = {}
for i = 1, 70 do big[i] = string.rep(string.char(64 + i % 26), 1048576) end
local _ = vars.y`, Options{Host: lh, Timeout: time.Minute, MemoryLimit: 4 * limit})
		collectAndLook(w) // after the load, whose file keeps the 70 MiB
	}
	ev := job(t, cond, "c").Evaluate(EvalInput{})
	if loadErr != nil {
		t.Fatalf("load: %v", loadErr)
	}
	if ev.Err != nil {
		t.Fatalf("the condition, which allocates nothing, failed: %v", ev.Err)
	}
}

// A hostile file loading beside a running condition is still stopped at its
// memory limit, and the condition is not.
func TestAHostileLoadBesideACallStopsAtItsLimit(t *testing.T) {
	const limit = 32 << 20
	h, cond := watchedCondition(t, limit)
	var loadErr error
	h.get = func() {
		// The time limit is far enough for the memory limit to stop the
		// load before it, and near enough to stop it, with a failure, if
		// the memory limit does not.
		loadErr = loadAside(t, "local n = 0\n"+hoard, Options{Host: newFakeHost(nil), Timeout: memoryTimeout, MemoryLimit: limit})
	}
	ev := job(t, cond, "c").Evaluate(EvalInput{})
	wantErr(t, loadErr, "test.lua:2: memory limit of 32 MiB exceeded")
	if ev.Err != nil {
		t.Fatalf("the condition, which allocates nothing, failed: %v", ev.Err)
	}
}
