package host

import (
	"strings"
	"testing"
	"time"
)

// With KeepBoundaries, an engine opened after another one stopped (a new
// leader of a cluster) runs every scheduled time the first one did not,
// each once and in order, and none the first one ran; times older than the
// window are dropped.
func TestKeepBoundariesRunsEachMissedScheduledTimeOnce(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/e.lua", `every("10 seconds", "true", { name = "e" })`)
	t0 := time.Date(2026, 12, 1, 0, 0, 5, 0, time.UTC)
	clock := NewFakeClock(t0)
	keep := func(o *EngineOptions) { o.KeepBoundaries = time.Minute }
	te := openTestEngineOpts(t, p, clock, -1, keep)
	te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
	clock.Set(t0.Add(5 * time.Second)) // 00:00:10
	te.waitFor("the first run", func() bool { return len(te.runs("e")) == 1 })
	te.waitIdle()
	te.close()

	// Down from 00:00:10 to 00:00:45: 20, 30 and 40 were missed.
	clock.Set(t0.Add(40 * time.Second))
	te = openTestEngineOpts(t, p, clock, -1, keep)
	te.waitFor("the missed runs", func() bool { return len(te.runs("e")) == 4 })
	te.waitIdle()
	var got []string
	for _, r := range te.runs("e") {
		got = append(got, r.Scheduled.Format("15:04:05"))
	}
	if want := "00:00:10 00:00:20 00:00:30 00:00:40"; strings.Join(got, " ") != want {
		t.Errorf("scheduled times run: %s, want %s", strings.Join(got, " "), want)
	}
	te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
	clock.Set(t0.Add(45 * time.Second)) // 00:00:50
	te.waitFor("the next run", func() bool { return len(te.runs("e")) == 5 })
	te.close()

	// Down for ten minutes: only the last minute's times run.
	clock.Set(t0.Add(10*time.Minute + 45*time.Second)) // 00:10:50
	te = openTestEngineOpts(t, p, clock, -1, keep)
	te.waitFor("the kept runs", func() bool { return len(te.runs("e")) == 5+7 })
	te.waitIdle()
	runs := te.runs("e")
	if first := runs[5].Scheduled; !first.Equal(time.Date(2026, 12, 1, 0, 9, 50, 0, time.UTC)) {
		t.Errorf("after a long stop the first time run is %v, want 00:09:50 (a minute back)", first)
	}
}
