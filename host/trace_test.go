package host

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

func (te *testEngine) why(job string) whenlua.WhyReport {
	te.t.Helper()
	rep, err := te.Why(context.Background(), job)
	if err != nil {
		te.t.Fatal(err)
	}
	return rep
}

// TestWhyKeepsTheNewestTenAcrossRestart: a job's evaluations form a ring
// of EvalKeep, on disk: after 25 sets and a restart, why gives the 10
// newest (and the restart's own evaluation), numbered on from before, and
// the store holds no more than 10 of them.
func TestWhyKeepsTheNewestTenAcrossRestart(t *testing.T) {
	te := newTestEngine(t, map[string]string{"w.lua": `when("x >= 100", "true", {name = "w"})`})
	for i := 1; i <= 25; i++ {
		te.set("x", i)
	}
	rep := te.why("w")
	if len(rep.Evaluations) != whenlua.EvalKeep {
		t.Fatalf("%d evaluations kept, want %d", len(rep.Evaluations), whenlua.EvalKeep)
	}
	// The load at the start is evaluation 1; the 25 sets are 2..26.
	for i, e := range rep.Evaluations {
		if want := uint64(26 - i); e.Seq != want {
			t.Fatalf("evaluation %d has seq %d, want %d", i, e.Seq, want)
		}
	}
	newest := rep.Evaluations[0]
	if newest.Trigger.Kind != whenlua.TriggerSet || newest.Trigger.Origin != whenlua.OriginCLI || newest.Outcome != whenlua.OutcomeFalse {
		t.Fatalf("newest evaluation: %+v", newest)
	}
	if len(newest.Values) != 1 || !newest.Values[0].Value.Equal(whenlua.Int(25)) || newest.Values[0].Prev == nil || !newest.Values[0].Prev.Equal(whenlua.Int(24)) {
		t.Fatalf("values read: %+v", newest.Values)
	}

	te = te.restart()
	rep = te.why("w")
	if len(rep.Evaluations) != whenlua.EvalKeep {
		t.Fatalf("after a restart: %d evaluations kept, want %d", len(rep.Evaluations), whenlua.EvalKeep)
	}
	first := rep.Evaluations[0]
	if first.Seq != 27 || first.Trigger.Kind != whenlua.TriggerStart || !first.Reloaded {
		t.Fatalf("the restart's evaluation: %+v", first)
	}
	if rep.Evaluations[1].Seq != 26 || !rep.Evaluations[1].Values[0].Value.Equal(whenlua.Int(25)) {
		t.Fatalf("the evaluation before the restart: %+v", rep.Evaluations[1])
	}
	stored, err := te.store.Evaluations("w")
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := te.store.EvalSeqs()
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != whenlua.EvalKeep || seqs["w"] != 27 {
		t.Fatalf("store: %d evaluations, newest seq %d", len(stored), seqs["w"])
	}
}

// TestWhyOutcomes: the outcome of each kind of evaluation, with its edge
// state and what it read.
func TestWhyOutcomes(t *testing.T) {
	te := newTestEngine(t, map[string]string{"w.lua": `
when("x >= 6", "sleep 60", {name = "edge", pre = one()})
when("y.z == 1", "true", {name = "broken"})
`})
	te.set("x", 7)
	rep := te.why("edge")
	e := rep.Evaluations[0]
	if e.Outcome != whenlua.OutcomeStarted || e.Serial == 0 || !e.Result || e.PrevResult {
		t.Fatalf("due: %+v", e)
	}
	started := e.Serial
	te.set("x", 8)
	e = te.why("edge").Evaluations[0]
	if e.Outcome != whenlua.OutcomeStillTrue || !e.Result || !e.PrevResult {
		t.Fatalf("true -> true: %+v", e)
	}
	if got := strings.Join(e.Lines(), "\n"); !strings.Contains(got, "not due: still true") || !strings.Contains(got, "x = 8 (previous 7)") {
		t.Fatalf("lines:\n%s", got)
	}
	te.set("x", 1)
	te.set("x", 9) // rises again while the first run still runs: one() refuses
	e = te.why("edge").Evaluations[0]
	if e.Outcome != whenlua.OutcomeRefused || !strings.Contains(e.Reason, "one():") || !strings.Contains(e.Reason, strconv.FormatUint(started, 10)) {
		t.Fatalf("refused: %+v", e)
	}
	if te.why("edge").Evaluations[1].Outcome != whenlua.OutcomeFalse {
		t.Fatalf("x = 1: %+v", te.why("edge").Evaluations[1])
	}

	te.set("y", 1)
	rep = te.why("broken")
	e = rep.Evaluations[0]
	if e.Outcome != whenlua.OutcomeError || !strings.Contains(e.Reason, "w.lua:3") || rep.CondError == "" {
		t.Fatalf("condition error: %+v (report error %q)", e, rep.CondError)
	}
	te.Cancel(context.Background(), started)
}

// TestWhyTestChangesNothing: a dry run (`whenlua test`) keeps no
// evaluation.
func TestWhyTestChangesNothing(t *testing.T) {
	te := newTestEngine(t, map[string]string{"w.lua": `when("x == 1", "true", {name = "w"})`})
	before := len(te.why("w").Evaluations)
	te.setMode(whenlua.ModeTest, "x", 1)
	if after := len(te.why("w").Evaluations); after != before {
		t.Fatalf("a test kept %d evaluations", after-before)
	}
}

// TestWhyEveryJob: an every-job's firings and its next scheduled time.
func TestWhyEveryJob(t *testing.T) {
	te := newTestEngine(t, map[string]string{"e.lua": `every("10 seconds", "true", {name = "tick"})`})
	rep := te.why("tick")
	if len(rep.Evaluations) != 0 || rep.NextScheduled.IsZero() {
		t.Fatalf("before the first firing: %+v", rep)
	}
	next := rep.NextScheduled
	te.clock.Advance(next.Sub(te.clock.Now()))
	te.waitFor("the firing", func() bool { return len(te.why("tick").Evaluations) == 1 })
	rep = te.why("tick")
	e := rep.Evaluations[0]
	if e.Trigger.Kind != whenlua.TriggerSchedule || !e.Scheduled.Equal(next) || e.Outcome != whenlua.OutcomeStarted || e.Serial == 0 {
		t.Fatalf("firing: %+v", e)
	}
	if !rep.NextScheduled.Equal(next.Add(10 * time.Second)) {
		t.Fatalf("next scheduled %s, want %s", rep.NextScheduled, next.Add(10*time.Second))
	}
}

// TestWhyUnknownJob: a job never loaded nor evaluated is not found.
func TestWhyUnknownJob(t *testing.T) {
	te := newTestEngine(t, nil)
	if _, err := te.Why(context.Background(), "nope"); !errors.Is(err, whenlua.ErrNotFound) {
		t.Fatalf("err %v, want ErrNotFound", err)
	}
}

// TestWhyHoldAndStart: a job with a hold says "hold pending" with its due
// time, then the hold timer's firing; `whenlua start` is recorded too.
func TestWhyHoldAndStart(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/h.lua", holdJob)
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := NewFakeClock(t0)
	te := openTestEngine(t, p, clock)
	te.set("load", 5)
	rep := te.why("busy")
	e := rep.Evaluations[0]
	if e.Outcome != whenlua.OutcomeHold || !strings.Contains(e.Reason, t0.Add(5*time.Minute).Format(time.RFC3339)) || !rep.HoldDue.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("hold pending: %+v (report due %s)", e, rep.HoldDue)
	}
	stepTo(te, clock, t0.Add(5*time.Minute))
	te.waitFor("the run after the hold", func() bool { return len(te.runs("busy")) == 1 })
	e = te.why("busy").Evaluations[0]
	if e.Trigger.Kind != whenlua.TriggerHold || e.Outcome != whenlua.OutcomeStarted || e.Serial != te.runs("busy")[0].Serial {
		t.Fatalf("hold firing: %+v", e)
	}
	r, err := te.Start(context.Background(), "busy")
	if err != nil {
		t.Fatal(err)
	}
	e = te.why("busy").Evaluations[0]
	if e.Trigger.Kind != whenlua.TriggerManual || e.Outcome != whenlua.OutcomeStarted || e.Serial != r.Serial {
		t.Fatalf("whenlua start: %+v", e)
	}
	te.waitIdle()
}
