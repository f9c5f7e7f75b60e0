package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// whyJSON is `whenlua why JOB --json`, decoded.
func (h *home) whyJSON(job string) whenlua.WhyReport {
	h.t.Helper()
	var rep whenlua.WhyReport
	if err := json.Unmarshal([]byte(h.ok("why", job, "--json")), &rep); err != nil {
		h.t.Fatal(err)
	}
	return rep
}

// TestWhySaysWhyAWhenJobRanOrNot: after a true -> true set, why says "not
// due: still true" and names the value now and before; after a rising
// edge, "started serial N"; after a rise while the run still runs, one()'s
// reason; a condition that raises shows its error.
func TestWhySaysWhyAWhenJobRanOrNot(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("disk.lua", `
when("free < 100", "sleep 60", { name = "low", pre = one() })
when("load.avg > 1", "true", { name = "broken" })
`)
	h.start()
	h.ok("set", "--type", "int", "free=50")
	rep := h.whyJSON("low")
	if len(rep.Evaluations) != 2 || rep.Evaluations[0].Outcome != whenlua.OutcomeStarted {
		t.Fatalf("after the rising edge: %+v", rep)
	}
	serial := rep.Evaluations[0].Serial

	h.ok("set", "--type", "int", "free=40")
	out := h.ok("why", "low")
	for _, want := range []string{
		"low (when free < 100, ",
		"edge state: true",
		"set of free by cli: not due: still true",
		"result true, previous result true",
		"free = 40 (previous 50)",
		fmt.Sprintf("set of free by cli: started serial %d", serial),
		"free = 50 (no previous evaluation)",
		"daemon start (load of ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("why low does not say %q:\n%s", want, out)
		}
	}
	if first := strings.Index(out, "not due: still true"); first < 0 || first > strings.Index(out, "started serial") {
		t.Errorf("why low does not list the newest first:\n%s", out)
	}

	h.ok("set", "--type", "int", "free=500")
	h.ok("set", "--type", "int", "free=10") // rises again while the first run runs
	out = h.ok("why", "low", "-n", "1")
	if want := fmt.Sprintf("pre refused: one(): serial %d still running", serial); !strings.Contains(out, want) || strings.Count(out, "set of free") != 1 {
		t.Errorf("why low -n 1 does not say %q once:\n%s", want, out)
	}
	h.ok("cancel", fmt.Sprint(serial))
	// The REPL's why() prints what whenlua why prints.
	if r, want := h.replPiped(`why("low")`+"\n"), h.ok("why", "low"); r.code != 0 || r.stdout != want {
		t.Errorf("why(\"low\") in the REPL: %v, want stdout %q", r, want)
	}

	h.ok("set", "load=high")
	out = h.ok("why", "broken")
	if !strings.Contains(out, "condition error: ") || !strings.Contains(out, "disk.lua:3") {
		t.Errorf("why broken does not show the error:\n%s", out)
	}
	h.fails(1, []string{"why", "nope"}, "no job named")
	h.fails(2, []string{"why"}, "usage")
}

// TestWhyOfAnEveryJobGivesItsLastAndNextTimes: an every-job's firings, each
// with the scheduled time it stood for and its run, and the next time.
func TestWhyOfAnEveryJobGivesItsLastAndNextTimes(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("tick.lua", `every("1 second", "true", { name = "tick" })`)
	h.start()
	var rep whenlua.WhyReport
	waitFor(t, "a firing of tick", func() bool {
		rep = h.whyJSON("tick")
		return len(rep.Evaluations) > 0
	})
	e := rep.Evaluations[0]
	if e.Trigger.Kind != whenlua.TriggerSchedule || e.Scheduled.IsZero() || e.Outcome != whenlua.OutcomeStarted || e.Serial == 0 {
		t.Fatalf("firing: %+v", e)
	}
	if !rep.NextScheduled.After(e.Scheduled) || rep.NextScheduled.Sub(e.Scheduled)%time.Second != 0 {
		t.Fatalf("next scheduled %s after the firing for %s", rep.NextScheduled, e.Scheduled)
	}
	out := h.ok("why", "tick")
	for _, want := range []string{"tick (every second, ", "next scheduled: ", "scheduled time: started serial ", "    scheduled "} {
		if !strings.Contains(out, want) {
			t.Errorf("why tick does not say %q:\n%s", want, out)
		}
	}
}

// TestWhyKeepsTenEvaluationsAcrossARestart: the ring survives a daemon
// restart and stays at ten.
func TestWhyKeepsTenEvaluationsAcrossARestart(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("w.lua", `when("x == 0", "true", { name = "w" })`)
	h.start()
	for i := 1; i <= 12; i++ {
		h.ok("set", "--type", "int", fmt.Sprintf("x=%d", i))
	}
	h.ok("daemon", "restart")
	rep := h.whyJSON("w")
	if len(rep.Evaluations) != whenlua.EvalKeep {
		t.Fatalf("%d evaluations after a restart, want %d", len(rep.Evaluations), whenlua.EvalKeep)
	}
	if e := rep.Evaluations[0]; e.Trigger.Kind != whenlua.TriggerStart || e.Seq != 14 {
		t.Errorf("newest: %+v, want the restart's evaluation, seq 14", e)
	}
	if e := rep.Evaluations[1]; e.Seq != 13 || len(e.Values) != 1 || !e.Values[0].Value.Equal(whenlua.Int(12)) {
		t.Errorf("second newest: %+v, want the set of x=12", e)
	}
}
