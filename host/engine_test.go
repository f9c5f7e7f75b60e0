package host

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/persist"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// badger's caches start goroutines that outlive Close by design.
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// testEngine is an engine on a real store in a temp home, with a fake clock
// and no watcher (tests rescan with Reload).
type testEngine struct {
	*Engine
	t     *testing.T
	paths whenlua.Paths
	store *persist.Store
	clock *FakeClock
}

func testPaths(t *testing.T, home string) whenlua.Paths {
	t.Helper()
	p, err := whenlua.ResolvePaths(home)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	return p
}

// newTestEngine writes files into a fresh jobs directory and opens an engine on it.
func newTestEngine(t *testing.T, files map[string]string) *testEngine {
	t.Helper()
	p := testPaths(t, t.TempDir())
	for name, src := range files {
		writeFile(t, filepath.Join(p.JobsDir, name), src)
	}
	return openTestEngine(t, p, NewFakeClock(testEpoch))
}

// clockedEngine opens an engine on a new home whose one job file, name,
// holds src, with a fake clock at start.
func clockedEngine(t *testing.T, name, src string, start time.Time) (*testEngine, *FakeClock) {
	t.Helper()
	p := testPaths(t, t.TempDir())
	writeFile(t, filepath.Join(p.JobsDir, name), src)
	clock := NewFakeClock(start)
	return openTestEngine(t, p, clock), clock
}

func openTestEngine(t *testing.T, p whenlua.Paths, clock *FakeClock) *testEngine {
	t.Helper()
	return openTestEngineWith(t, p, clock, -1)
}

// openTestEngineWith opens an engine whose watcher polls every poll (<0: no watcher).
func openTestEngineWith(t *testing.T, p whenlua.Paths, clock *FakeClock, poll time.Duration) *testEngine {
	t.Helper()
	return openTestEngineOpts(t, p, clock, poll, nil)
}

// openTestEngineOpts is openTestEngineWith with options changed by adjust (when not nil).
func openTestEngineOpts(t *testing.T, p whenlua.Paths, clock *FakeClock, poll time.Duration, adjust func(*EngineOptions)) *testEngine {
	t.Helper()
	store, err := persist.Open(persist.Options{Dir: p.DBDir, MaintainEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	opts := EngineOptions{
		Store:      store,
		Paths:      p,
		Clock:      clock,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		PollEvery:  poll,
		Debounce:   50 * time.Millisecond,
		Grace:      200 * time.Millisecond,
		LuaTimeout: 500 * time.Millisecond,
	}
	if adjust != nil {
		adjust(&opts)
	}
	e := NewEngine(opts)
	if err := e.Open(context.Background()); err != nil {
		store.Close()
		t.Fatal(err)
	}
	te := &testEngine{Engine: e, t: t, paths: p, store: store, clock: clock}
	t.Cleanup(te.close)
	return te
}

func (te *testEngine) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := te.Engine.Close(ctx); err != nil {
		te.t.Error(err)
	}
	te.store.Close()
}

// restart closes the engine and the store and opens both again on the same home.
func (te *testEngine) restart() *testEngine {
	te.t.Helper()
	te.close()
	timeout := te.opts.LuaTimeout
	return openTestEngineOpts(te.t, te.paths, te.clock, te.opts.PollEvery, func(o *EngineOptions) { o.LuaTimeout = timeout })
}

func writeFile(t *testing.T, path, src string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// set applies assignments like `whenlua set` and returns the jobs it triggered.
func (te *testEngine) set(kv ...any) []string {
	te.t.Helper()
	return te.setMode(whenlua.ModeSet, kv...)
}

func (te *testEngine) setMode(mode whenlua.Mode, kv ...any) []string {
	te.t.Helper()
	var as []whenlua.Assignment
	for i := 0; i < len(kv); i += 2 {
		as = append(as, whenlua.Assignment{Name: kv[i].(string), Value: val(kv[i+1])})
	}
	resp, err := te.Set(context.Background(), whenlua.SetRequest{Mode: mode, Assignments: as})
	if err != nil {
		te.t.Fatalf("set %v: %v", kv, err)
	}
	return resp.Triggered
}

func val(x any) whenlua.Value {
	switch v := x.(type) {
	case nil:
		return whenlua.Nil
	case int:
		return whenlua.Int(int64(v))
	case float64:
		return whenlua.Float(v)
	case string:
		return whenlua.String(v)
	case bool:
		return whenlua.Bool(v)
	case whenlua.Value:
		return v
	}
	panic(fmt.Sprintf("val %T", x))
}

// waitIdle waits until no run is running.
func (te *testEngine) waitIdle() {
	te.t.Helper()
	te.waitFor("no running jobs", func() bool {
		jobs, err := te.Jobs(context.Background())
		return err == nil && len(jobs) == 0
	})
}

func (te *testEngine) waitFor(what string, cond func() bool) {
	te.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			te.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// runs returns the finished runs of job, oldest first.
// idleRuns waits until no run is going, then fails unless job has run want
// times; why says what a wrong count means.
func (te *testEngine) idleRuns(job string, want int, why string) {
	te.t.Helper()
	te.waitIdle()
	if n := len(te.runs(job)); n != want {
		te.t.Fatalf("%s ran %d times, want %d: %s", job, n, want, why)
	}
}

func (te *testEngine) runs(job string) []whenlua.Run {
	te.t.Helper()
	rs, err := te.Log(context.Background(), job, 0)
	if err != nil {
		te.t.Fatal(err)
	}
	slices.Reverse(rs)
	return rs
}

func (te *testEngine) get(name string) whenlua.Value {
	te.t.Helper()
	v, err := te.Get(context.Background(), name)
	if err != nil {
		te.t.Fatal(err)
	}
	return v
}

func (te *testEngine) status() whenlua.Status {
	te.t.Helper()
	s, err := te.Status(context.Background())
	if err != nil {
		te.t.Fatal(err)
	}
	return s
}

func (te *testEngine) reload() whenlua.Status {
	te.t.Helper()
	s, err := te.Reload(context.Background(), whenlua.ReloadRequest{})
	if err != nil {
		te.t.Fatal(err)
	}
	return s
}

func countOf(names []string, name string) int {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n
}

// testEpoch is the fake clock's start in engine tests.
var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func writeFileBytes(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
