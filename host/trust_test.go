package host

import (
	"context"
	"errors"
	"strings"
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
