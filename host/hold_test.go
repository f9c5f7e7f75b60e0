package host

import (
	"testing"
	"time"
)

const holdJob = `when("load > 4", "true", { name = "busy", hold = "5m" })`

// stepTo sets the clock to at, after the engine armed a timer, and lets
// whatever that fires finish.
func stepTo(te *testEngine, clock *FakeClock, at time.Time) {
	te.t.Helper()
	te.waitFor("a timer", func() bool { return clock.Timers() > 0 })
	clock.Set(at)
	te.waitIdle()
}

// openHoldEngine opens an engine on holdJob with a fake clock at t0.
func openHoldEngine(t *testing.T) (te *testEngine, clock *FakeClock, t0 time.Time) {
	t.Helper()
	t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	te, clock = clockedEngine(t, "h.lua", holdJob, t0)
	return te, clock, t0
}

func TestHoldRunsOnceTheConditionHasHeldThatLong(t *testing.T) {
	te, clock, t0 := openHoldEngine(t)
	if due := te.set("load", 5); len(due) != 0 {
		t.Fatalf("due at once: %v", due)
	}
	if s := te.status(); len(s.Pending) != 1 || s.Pending[0].Job != "busy" || !s.Pending[0].Since.Equal(t0) || !s.Pending[0].Due.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("pending = %+v", s.Pending)
	}
	stepTo(te, clock, t0.Add(5*time.Minute-time.Nanosecond))
	if n := len(te.runs("busy")); n != 0 {
		t.Fatalf("ran %d times before the hold was over", n)
	}
	clock.Set(t0.Add(5 * time.Minute))
	te.waitFor("the run after the hold", func() bool { return len(te.runs("busy")) == 1 })
	if r := te.runs("busy")[0]; !r.Start.Equal(t0.Add(5*time.Minute)) || r.Trigger != "when" {
		t.Fatalf("run %+v", r)
	}
	// Still true: no second run, nothing pending.
	te.set("load", 6)
	clock.Set(t0.Add(20 * time.Minute))
	te.waitIdle()
	if n, s := len(te.runs("busy")), te.status(); n != 1 || len(s.Pending) != 0 {
		t.Fatalf("while it stays true: %d runs, pending %+v", n, s.Pending)
	}
	// False, then true again: a new hold, a second run.
	te.set("load", 1)
	te.set("load", 7)
	stepTo(te, clock, t0.Add(25*time.Minute))
	te.waitFor("the second run", func() bool { return len(te.runs("busy")) == 2 })
}

func TestAFalseInBetweenResetsTheHold(t *testing.T) {
	te, clock, t0 := openHoldEngine(t)
	te.set("load", 5)
	clock.Set(t0.Add(3 * time.Minute))
	te.set("load", 1) // the spike is over
	clock.Set(t0.Add(4 * time.Minute))
	te.set("load", 5) // a new rise: the hold starts again
	stepTo(te, clock, t0.Add(5*time.Minute))
	if n := len(te.runs("busy")); n != 0 {
		t.Fatalf("ran at the first rise's deadline although the load dropped in between")
	}
	if s := te.status(); len(s.Pending) != 1 || !s.Pending[0].Since.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("pending = %+v", s.Pending)
	}
	clock.Set(t0.Add(9 * time.Minute))
	te.waitFor("the run five minutes after the second rise", func() bool { return len(te.runs("busy")) == 1 })
}

func TestAPendingHoldSurvivesARestart(t *testing.T) {
	te, clock, t0 := openHoldEngine(t)
	te.set("load", 5)
	clock.Set(t0.Add(2 * time.Minute))
	te = te.restart()
	if s := te.status(); len(s.Pending) != 1 || !s.Pending[0].Since.Equal(t0) {
		t.Fatalf("after a restart, pending = %+v", s.Pending)
	}
	stepTo(te, clock, t0.Add(5*time.Minute))
	te.waitFor("the run at the deadline", func() bool { return len(te.runs("busy")) == 1 })

	// A deadline that passed while the daemon was down fires at start.
	te.set("load", 1)
	te.set("load", 5)
	te.close()
	clock.Set(t0.Add(30 * time.Minute))
	te = openTestEngine(t, te.paths, clock)
	te.waitFor("the run of the hold that ended while down", func() bool { return len(te.runs("busy")) == 2 })
}
