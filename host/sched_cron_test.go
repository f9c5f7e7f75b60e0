package host

import (
	"testing"
	"time"
)

// A cron job in a named zone runs at the times ISC cron would, across the
// spring-forward of Europe/Berlin: its 02:30 of 29 March 2026 does not
// exist and runs once, at 03:00 CEST, when the gap ends.
func TestCronJobsRunAtTheirZonesWallClockTimes(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, berlin) }
	te, clock := clockedEngine(t, "c.lua", `cron("30 2 * * *", "true", {name="c", tz="Europe/Berlin"})`, at(28, 0, 0))
	want := []time.Time{at(28, 2, 30), at(29, 3, 0), at(30, 2, 30)}
	if got := want[1].UTC(); !got.Equal(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)) {
		t.Fatalf("03:00 CEST is %v", got)
	}
	for i, b := range want {
		te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
		clock.Set(b.Add(-time.Nanosecond))
		te.waitIdle()
		if n := len(te.runs("c")); n != i {
			t.Fatalf("before %v: %d runs, want %d", b, n, i)
		}
		clock.Set(b)
		te.waitFor("the run at its time", func() bool { return len(te.runs("c")) == i+1 })
		r := te.runs("c")[i]
		if !r.Start.Equal(b) || r.Trigger != "cron" {
			t.Fatalf("run %d started at %v by %q, want %v by cron", i, r.Start, r.Trigger, b)
		}
	}
	s := te.status()
	if len(s.Next) != 1 || s.Next[0].Kind != "cron" || s.Next[0].Cron != "30 2 * * *" || s.Next[0].Zone != "Europe/Berlin" ||
		!s.Next[0].Next.Equal(at(31, 2, 30)) {
		t.Fatalf("status next = %+v", s.Next)
	}
}

// An every-job with tz runs at local midnights: 23 hours apart across the
// spring-forward.
func TestEveryDayWithAZoneRunsAtLocalMidnight(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	te, clock := clockedEngine(t, "e.lua", `every("day", "true", {name="d", tz="America/New_York"})`, time.Date(2026, 3, 7, 12, 0, 0, 0, ny))
	for i, b := range []time.Time{time.Date(2026, 3, 8, 0, 0, 0, 0, ny), time.Date(2026, 3, 9, 0, 0, 0, 0, ny)} {
		te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
		clock.Set(b)
		te.waitFor("the run at midnight", func() bool { return len(te.runs("d")) == i+1 })
		if r := te.runs("d")[i]; !r.Start.Equal(b) {
			t.Fatalf("run %d at %v, want %v", i, r.Start, b)
		}
	}
	if s := te.status(); len(s.Next) != 1 || s.Next[0].Zone != "America/New_York" || s.Next[0].Next.Sub(time.Date(2026, 3, 9, 0, 0, 0, 0, ny)) != 24*time.Hour {
		t.Fatalf("status next = %+v", s.Next)
	}
}
