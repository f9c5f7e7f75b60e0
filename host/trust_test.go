package host

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// setAsync sets like te.set but returns the error, failing the test if the
// set does not come back at all (a hung engine).
func (te *testEngine) setErr(kv ...any) ([]string, error) {
	te.t.Helper()
	var as []whenlua.Assignment
	for i := 0; i < len(kv); i += 2 {
		as = append(as, whenlua.Assignment{Name: kv[i].(string), Value: val(kv[i+1])})
	}
	type reply struct {
		resp whenlua.SetResponse
		err  error
	}
	done := make(chan reply, 1)
	go func() {
		resp, err := te.Set(context.Background(), whenlua.SetRequest{Assignments: as})
		done <- reply{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp.Triggered, r.err
	case <-time.After(60 * time.Second):
		te.t.Fatalf("set %v never returned: the engine is stuck", kv)
		return nil, nil
	}
}

func TestAPreThatSetsItsOwnTriggerIsStoppedAndTheStepIsKept(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/p.lua", `
when("changes(\"p\")", "true", {name="loop", pre=function() set("p", (get("p") or 0) + 1) return true end})
when("q == 1", "true", {name="other"})
`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	triggered, err := te.setErr("p", 0)
	if !errors.Is(err, whenlua.ErrConflict) || !strings.Contains(err.Error(), "loop (") || !strings.Contains(err.Error(), "p.lua:2") {
		t.Fatalf("set p=0: %v, want an error naming loop at p.lua:2", err)
	}
	if countOf(triggered, "loop") != 0 {
		// The reply is an error: its triggered list is not sent.
		t.Logf("triggered %v", triggered)
	}
	// Committed up to the stop: p moved on by the pre hooks that ran.
	if v := te.get("p"); v.T != whenlua.TypeInt || v.I != maxDuePerStep {
		t.Fatalf("p = %v, want %d (one increment per run started)", v, maxDuePerStep)
	}
	s := te.status()
	if len(s.CondErrors) != 1 || !strings.HasPrefix(s.CondErrors[0], "loop: "+p.JobsDir+"/p.lua:2: ") {
		t.Fatalf("status: %q, want the loop named at p.lua:2", s.CondErrors)
	}
	// The daemon goes on: other sets are evaluated and stored.
	if got := te.set("q", 1); len(got) != 1 || got[0] != "other" {
		t.Fatalf("set q=1 triggered %v, want [other]", got)
	}
	te.waitIdle()
	if n := len(te.runs("loop")); n != maxDuePerStep {
		t.Fatalf("%d runs of loop, want %d", n, maxDuePerStep)
	}
	// A restart loads the file and runs nothing away.
	te = te.restart()
	if v := te.get("p"); v.I != maxDuePerStep {
		t.Fatalf("after restart p = %v", v)
	}
}

// indexOf returns how many when-jobs the index lists for name and how many
// are evaluated on every set.
func (te *testEngine) indexOf(name string) (dependents, everySet int) {
	te.query(func() { dependents, everySet = len(te.st.index[name]), len(te.st.depsAll) })
	return
}

// newManyJobsEngine opens an engine on one file declaring many jobs, with a
// time limit that its top level cannot reach on a slow machine.
func newManyJobsEngine(t *testing.T, src string) *testEngine {
	t.Helper()
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/many.lua", src)
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), -1, func(o *EngineOptions) { o.LuaTimeout = time.Minute })
	if f, _ := te.fileStatusOf("many.lua"); f.Error != "" {
		t.Fatalf("many.lua: %s", f.Error)
	}
	return te
}

func TestJobsReadingComputedNamesAreIndexedByTheNamesTheyRead(t *testing.T) {
	te := newManyJobsEngine(t, `
for i = 1, 20000 do
  local n = "o" .. i
  when(function() return vars[n] == 1 end, "true", {name = "o." .. i})
end`)
	if deps, every := te.indexOf("o7"); deps != 1 || every != 0 {
		t.Fatalf("o7 has %d dependents and %d jobs are evaluated on every set; want 1 and 0", deps, every)
	}
	for i := range 3 {
		got, err := te.setErr("o7", 1-i%2)
		if err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
		if want := 1 - i%2; len(got) != want || want == 1 && got[0] != "o.7" {
			t.Fatalf("set %d of o7 triggered %v", i, got)
		}
	}
}

func TestAComputedNameFollowsTheValuesItIsComputedFrom(t *testing.T) {
	te := newTestEngine(t, map[string]string{"k.lua": `
local key = "a"
when(function() return vars[vars.k or key] == 1 end, "true", {name = "j"})
when("flip == 1", "true", {name = "flip", pre = function() key = "b" return true end})
`})
	if got := te.set("a", 1); !slices.Equal(got, []string{"j"}) {
		t.Fatalf("a=1 triggered %v, want [j]", got)
	}
	te.set("a", 0)
	// A hook changes the name the condition computes: b is read now.
	te.set("flip", 1)
	if got := te.set("b", 1); !slices.Equal(got, []string{"j"}) {
		t.Fatalf("b=1 after the pre changed the key triggered %v, want [j]", got)
	}
	te.set("b", 0)
	te.set("k", "c")
	if got := te.set("c", 1); !slices.Equal(got, []string{"j"}) {
		t.Fatalf("c=1 after k=c triggered %v, want [j]", got)
	}
}

func TestAStepChangingTwentyThousandJobStatesIsStored(t *testing.T) {
	// A computed name in a helper: these jobs depend on every variable and
	// every set changes all their snapshots.
	te := newManyJobsEngine(t, `
for i = 1, 20000 do
  local n = "o" .. i
  when(function() return changes(n) end, "true", {name = "o." .. i})
end`)
	for i := range 2 {
		got, err := te.setErr("o3", i+1)
		if err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
		if !slices.Equal(got, []string{"o.3"}) {
			t.Fatalf("set %d triggered %v, want [o.3]", i, got)
		}
	}
	te.waitIdle()
	// Stored: a restart fires nothing and keeps each edge.
	te = te.restart()
	if got := te.set("o3", 2); len(got) != 0 {
		t.Fatalf("after a restart, setting o3 to its value triggered %v", got)
	}
	if got := te.set("o4", 1); !slices.Equal(got, []string{"o.4"}) {
		t.Fatalf("after a restart, o4=1 triggered %v, want [o.4]", got)
	}
}

// countingHandler is a slog handler that counts the records whose message is msg.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}

func TestAConditionThatKeepsRunningOutOfTimeIsSuspendedUntilReload(t *testing.T) {
	t.Parallel()
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/slow.lua", `
when(function() log("evaluating") if vars.spin then while true do end end return false end, "true", {name="slow"})
when("spin", "true", {name="fast"})
`)
	var evals atomic.Int64
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), -1, func(o *EngineOptions) {
		o.Logger = slog.New(countingHandler{Handler: slog.DiscardHandler, msg: "evaluating", n: &evals})
	})
	te.set("spin", 1)
	te.set("spin", 2)
	s := te.status()
	if len(s.CondErrors) != 1 || !strings.HasPrefix(s.CondErrors[0], "slow: "+p.JobsDir+"/slow.lua:2: time limit") || !strings.Contains(s.CondErrors[0], "suspended") {
		t.Fatalf("status after two timeouts: %q, want slow suspended at slow.lua:2", s.CondErrors)
	}
	before := evals.Load()
	for i := 3; i <= 5; i++ {
		te.set("spin", i)
	}
	if n := evals.Load() - before; n != 0 {
		t.Fatalf("a suspended condition was evaluated %d times", n)
	}
	te.reload()
	if s := te.status(); len(s.CondErrors) != 0 {
		t.Fatalf("after reload: %q, want the suspension lifted", s.CondErrors)
	}
	te.set("spin", false)
	if n := evals.Load() - before; n == 0 {
		t.Fatal("after reload the condition was not evaluated again")
	}
}

func TestADaemonStopsASelfTriggeringPreAndKeepsAnswering(t *testing.T) {
	p := daemonHome(t)
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p.JobsDir+"/p.lua", `when("changes(\"p\")","true",{pre=function() set("p",(get("p") or 0)+1) return true end})`+"\n")
	startDaemon(t, p)
	c := whenlua.Dial(p.Socket)
	defer c.Close()
	ctx := context.Background()
	_, err := c.Set(ctx, whenlua.SetRequest{Assignments: []whenlua.Assignment{{Name: "p", Value: whenlua.Int(0)}}})
	if !errors.Is(err, whenlua.ErrConflict) || !strings.Contains(err.Error(), "p.1 ("+p.JobsDir+"/p.lua:1)") {
		t.Fatalf("set p=0: %v, want a conflict naming p.1 at p.lua:1", err)
	}
	// Answered at once after the stop: the values the step stored.
	v, err := c.Get(ctx, "p")
	if err != nil || !v.Equal(whenlua.Int(maxDuePerStep)) {
		t.Fatalf("get p = %v, %v; want %d", v, err, maxDuePerStep)
	}
	s, err := c.Status(ctx)
	if err != nil || len(s.CondErrors) != 1 || !strings.HasPrefix(s.CondErrors[0], "p.1: "+p.JobsDir+"/p.lua:1: made due") {
		t.Fatalf("status: %q, %v", s.CondErrors, err)
	}
}
