package host

import (
	"testing"
	"time"
)

func TestEveryRunsOnEpochAlignedBoundaries(t *testing.T) {
	utc := func(y int, m time.Month, d, h, mi, s int) time.Time { return time.Date(y, m, d, h, mi, s, 0, time.UTC) }
	for _, tc := range []struct {
		name, period string
		start        time.Time
		boundaries   []time.Time
	}{
		{"every 10 seconds falls on multiples of 10 s", "10 seconds", utc(2026, 1, 1, 0, 0, 3),
			[]time.Time{utc(2026, 1, 1, 0, 0, 10), utc(2026, 1, 1, 0, 0, 20)}},
		{"every minute falls on :00", "minute", utc(2026, 1, 1, 0, 0, 59),
			[]time.Time{utc(2026, 1, 1, 0, 1, 0), utc(2026, 1, 1, 0, 2, 0)}},
		{"every day falls at midnight UTC", "day", utc(2026, 3, 5, 13, 0, 0),
			[]time.Time{utc(2026, 3, 6, 0, 0, 0), utc(2026, 3, 7, 0, 0, 0)}},
		{"every month falls on the 1st, across a year end", "month", utc(2026, 11, 20, 0, 0, 0),
			[]time.Time{utc(2026, 12, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0)}},
		{"every 2 months counts months since 1970-01", "2 months", utc(2026, 2, 10, 0, 0, 0),
			[]time.Time{utc(2026, 3, 1, 0, 0, 0), utc(2026, 5, 1, 0, 0, 0)}},
		{"every year falls on January 1st", "year", utc(2026, 6, 1, 0, 0, 0),
			[]time.Time{utc(2027, 1, 1, 0, 0, 0), utc(2028, 1, 1, 0, 0, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPaths(t, t.TempDir())
			writeFile(t, p.JobsDir+"/e.lua", `every("`+tc.period+`", "true", {name="e"})`)
			clock := NewFakeClock(tc.start)
			te := openTestEngine(t, p, clock)
			for i, b := range tc.boundaries {
				te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
				clock.Set(b.Add(-time.Nanosecond))
				clock.Set(b.Add(-time.Nanosecond)) // fire nothing early
				te.waitIdle()
				if n := len(te.runs("e")); n != i {
					t.Fatalf("before %v: %d runs, want %d", b, n, i)
				}
				clock.Set(b)
				te.waitFor("the run at the boundary", func() bool { return len(te.runs("e")) == i+1 })
				if got := te.runs("e")[i].Start; !got.Equal(b) {
					t.Fatalf("run %d started at %v, want %v", i, got, b)
				}
			}
		})
	}
}

func TestEveryJobsAreScheduledInStatus(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/e.lua", `every("hour", "true", {name="h"}) every("minute", "true", {name="m"})`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch.Add(30*time.Second)))
	s := te.status()
	if len(s.Next) != 2 || s.Next[0].Name != "m" || !s.Next[0].Next.Equal(testEpoch.Add(time.Minute)) || !s.Next[1].Next.Equal(testEpoch.Add(time.Hour)) {
		t.Fatalf("next runs = %+v", s.Next)
	}
}

func TestAReloadAtABoundaryNeitherSkipsNorRepeatsAnEveryRun(t *testing.T) {
	te, clock := clockedEngine(t, "e.lua", `every("10 seconds", "true", {name="e"})`, testEpoch.Add(time.Second))
	// The boundary passes while the engine is busy with a reload: the
	// reloaded job keeps the boundary it had, and runs at it.
	clock.Set(testEpoch.Add(10 * time.Second))
	writeFile(t, te.paths.JobsDir+"/e.lua", `every("10 seconds", "true", {name="e"}) -- edited`)
	te.reload()
	te.waitFor("the run at the boundary", func() bool { return len(te.runs("e")) == 1 })
	if got := te.runs("e")[0].Start; !got.Equal(testEpoch.Add(10 * time.Second)) {
		t.Fatalf("run at %v, want the boundary", got)
	}
	s := te.status()
	if len(s.Next) != 1 || !s.Next[0].Next.Equal(testEpoch.Add(20*time.Second)) {
		t.Fatalf("next = %+v, want the following boundary", s.Next)
	}
}

// A run due after 2262, which Unix nanoseconds cannot hold, is scheduled
// at its time: not in the past, where it would run again and again.
func TestAnEveryJobDueAfter2262WaitsForIt(t *testing.T) {
	te, clock := clockedEngine(t, "e.lua", `every("300 years", "true", {name="far"}) every("1000 years", "true", {name="farther"})`, testEpoch)
	s := te.status()
	want := map[string]time.Time{"far": time.Date(2270, 1, 1, 0, 0, 0, 0, time.UTC), "farther": time.Date(2970, 1, 1, 0, 0, 0, 0, time.UTC)}
	if len(s.Next) != 2 {
		t.Fatalf("next runs = %+v", s.Next)
	}
	for _, ji := range s.Next {
		if !ji.Next.Equal(want[ji.Name]) {
			t.Errorf("%s: next run %v, want %v", ji.Name, ji.Next, want[ji.Name])
		}
	}
	clock.Set(testEpoch.Add(time.Hour))
	te.waitIdle()
	if n := len(te.runs("far")) + len(te.runs("farther")); n != 0 {
		t.Fatalf("%d runs, want none", n)
	}
}

func TestEveryJobsFollowTheWallClockAfterItJumps(t *testing.T) {
	t.Run("forward, as after a suspend: the missed run happens within maxTimerWait", func(t *testing.T) {
		te, clock := clockedEngine(t, "e.lua", `every("10 minutes", "true", {name="e"})`, testEpoch)
		te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
		clock.Jump(time.Hour) // the timers did not see the hour go by
		clock.Advance(maxTimerWait)
		te.waitFor("the run missed while asleep", func() bool { return len(te.runs("e")) == 1 })
		if got, want := te.runs("e")[0].Start, testEpoch.Add(time.Hour+maxTimerWait); !got.Equal(want) {
			t.Fatalf("run at %v, want %v", got, want)
		}
		if s := te.status(); !s.Next[0].Next.Equal(testEpoch.Add(70 * time.Minute)) {
			t.Fatalf("next run %v, want the boundary after the wall clock's now", s.Next[0].Next)
		}
	})
	t.Run("back: the next run is the first boundary after the new now", func(t *testing.T) {
		te, clock := clockedEngine(t, "e.lua", `every("10 minutes", "true", {name="e"})`, testEpoch.Add(5*time.Minute))
		te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
		clock.Jump(-time.Hour)
		clock.Advance(maxTimerWait)
		back := testEpoch.Add(-50 * time.Minute) // 23:10 the day before
		te.waitFor("the next run moved back", func() bool {
			s := te.status()
			return len(s.Next) == 1 && s.Next[0].Next.Equal(back)
		})
		te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
		clock.Set(back)
		te.waitFor("the run at the wall clock's boundary", func() bool { return len(te.runs("e")) == 1 })
		if got := te.runs("e")[0].Start; !got.Equal(back) {
			t.Fatalf("run at %v, want %v", got, back)
		}
	})
}
