package host

import (
	"testing"
	"time"
)

const catchUpJobs = `
every("hour", "true", { name = "c", catch_up = true })
every("hour", "true", { name = "n" })
cron("30 2 * * *", "true", { name = "d", tz = "Europe/Berlin", catch_up = true })
`

// A catch_up job that missed scheduled times while the daemon was down for
// three days runs once when the daemon starts again, and its record says
// which time it stands for; a job without catch_up does not.
func TestCatchUpRunsOnceAfterThreeDaysDown(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/c.lua", catchUpJobs)
	// 2026-12-01 01:00 UTC is 02:00 in Berlin: d's 02:30 comes half an hour
	// after the hourly jobs' 01:00.
	t0 := time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)
	clock := NewFakeClock(t0)
	te := openTestEngine(t, p, clock)
	te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
	clock.Set(time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC))
	te.waitFor("the hourly runs", func() bool { return len(te.runs("c")) == 1 && len(te.runs("n")) == 1 })
	clock.Set(time.Date(2026, 12, 1, 2, 30, 0, 0, berlin))
	te.waitFor("the daily run", func() bool { return len(te.runs("d")) == 1 })
	te.waitIdle()
	for _, name := range []string{"c", "n", "d"} {
		if r := te.runs(name)[0]; !r.Scheduled.Equal(r.Start) || r.CatchUp {
			t.Fatalf("on-time run of %s: scheduled %v, start %v, catch-up %v", name, r.Scheduled, r.Start, r.CatchUp)
		}
	}

	te.close()
	back := time.Date(2026, 12, 4, 2, 40, 0, 0, berlin) // 01:40 UTC
	clock.Set(back)
	te = openTestEngine(t, p, clock)
	te.waitFor("the catch-up runs", func() bool { return len(te.runs("c")) == 2 && len(te.runs("d")) == 2 })
	te.waitIdle()
	for name, want := range map[string]time.Time{
		"c": time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC),
		"d": time.Date(2026, 12, 4, 2, 30, 0, 0, berlin),
	} {
		r := te.runs(name)[1]
		if !r.CatchUp || !r.Scheduled.Equal(want) || !r.Start.Equal(back) || r.Trigger != map[string]string{"c": "every", "d": "cron"}[name] {
			t.Errorf("catch-up run of %s: %+v, want one at %v standing for %v", name, r, back, want)
		}
	}
	if n := len(te.runs("n")); n != 1 {
		t.Errorf("the job without catch_up ran %d times, want 1 (before the downtime only)", n)
	}
	s := te.status()
	for _, ji := range s.Next {
		if ji.Name == "c" && !ji.Next.Equal(time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC)) {
			t.Errorf("after catching up c is next due at %v, want its next hour", ji.Next)
		}
	}

	// A second restart with nothing missed runs nothing.
	te.close()
	te = openTestEngine(t, p, clock)
	te.waitFor("the schedule", func() bool { return len(te.status().Next) == 3 })
	if n, m := len(te.runs("c")), len(te.runs("d")); n != 2 || m != 2 {
		t.Errorf("a restart with nothing missed ran c %d and d %d times in all, want 2 each", n, m)
	}
}

// A suspend is seen as the wall clock jumping ahead: the timer fires late.
// The catch_up job's run stands for the latest time it missed.
func TestCatchUpAfterASuspendSeenAsAClockJump(t *testing.T) {
	te, clock := clockedEngine(t, "c.lua", catchUpJobs, time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC))
	te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
	woke := time.Date(2026, 12, 1, 5, 20, 0, 0, time.UTC)
	clock.Set(woke)
	te.waitFor("the runs at the wake-up", func() bool { return len(te.runs("c")) == 1 && len(te.runs("n")) == 1 })
	te.waitIdle()
	if r := te.runs("c")[0]; !r.CatchUp || !r.Scheduled.Equal(time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)) || !r.Start.Equal(woke) {
		t.Errorf("catch-up run: %+v, want one at %v standing for 05:00", r, woke)
	}
	if n := len(te.runs("c")); n != 1 {
		t.Errorf("c ran %d times for the five missed hours, want once", n)
	}
	if s := te.status(); len(s.Next) != 3 || s.Next[0].Name != "c" || !s.Next[0].Next.Equal(time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)) {
		t.Errorf("next after the wake-up: %+v", s.Next)
	}
}

// A catch_up job that has never run has nothing to catch up on.
func TestANewCatchUpJobDoesNotRunAtLoad(t *testing.T) {
	te, _ := clockedEngine(t, "c.lua", catchUpJobs, time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC))
	te.waitFor("the schedule", func() bool { return len(te.status().Next) == 3 })
	// A wrong catch-up is either still pending (due now) or already started,
	// and then recorded once it ends.
	if s := te.status(); !s.Next[0].Next.Equal(time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("first next: %+v", s.Next[0])
	}
	te.waitIdle()
	if n := len(te.runs("c")); n != 0 {
		t.Errorf("a new catch_up job ran %d times at load", n)
	}
}
