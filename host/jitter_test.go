package host

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Each firing of a job with jitter = "10m" starts at a random point of
// the ten minutes after its scheduled time, drawn anew for each time, and
// its record keeps the scheduled time.
func TestJitterDelaysEachRunWithinItsBound(t *testing.T) {
	const jobs = 20
	var src strings.Builder
	for i := range jobs {
		fmt.Fprintf(&src, "every(\"hour\", \"true\", { name = \"j%d\", jitter = \"10m\" })\n", i)
	}
	fmt.Fprintf(&src, "cron(\"0 * * * *\", \"true\", { name = \"plain\", tz = \"UTC\" })\n")
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/j.lua", src.String())
	slot := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	clock := NewFakeClock(slot.Add(-30 * time.Minute))
	te := openTestEngine(t, p, clock)

	for round := range 2 {
		next := te.status().Next
		if len(next) != jobs+1 {
			t.Fatalf("round %d: %d jobs scheduled, want %d", round, len(next), jobs+1)
		}
		draws := map[time.Time]bool{}
		for _, ji := range next {
			d := ji.Next.Sub(slot)
			if ji.Name == "plain" {
				if d != 0 {
					t.Fatalf("round %d: the job without jitter is due %v after its time", round, d)
				}
				continue
			}
			if d < 0 || d >= 10*time.Minute {
				t.Fatalf("round %d: %s drawn %v after its time, want [0, 10m)", round, ji.Name, d)
			}
			draws[ji.Next] = true
		}
		if len(draws) < 2 {
			t.Fatalf("round %d: %d jobs all drew the same delay", round, jobs)
		}
		// Nothing starts before its drawn time; each starts at it.
		first := next[0] // the earliest draw
		if first.Name == "plain" {
			first = next[1]
		}
		te.waitFor("the timer", func() bool { return clock.Timers() > 0 })
		clock.Set(first.Next.Add(-time.Nanosecond))
		te.waitIdle()
		if n := len(te.runs(first.Name)); n != round {
			t.Fatalf("round %d: %s ran before its drawn time", round, first.Name)
		}
		clock.Set(first.Next)
		te.waitFor("the first drawn run", func() bool { return len(te.runs(first.Name)) == round+1 })
		if r := te.runs(first.Name)[round]; !r.Start.Equal(first.Next) {
			t.Fatalf("round %d: %s started at %v, drawn for %v", round, first.Name, r.Start, first.Next)
		}
		clock.Set(slot.Add(10 * time.Minute))
		for _, ji := range next {
			te.waitFor("the run of "+ji.Name, func() bool { return len(te.runs(ji.Name)) == round+1 })
			if r := te.runs(ji.Name)[round]; !r.Scheduled.Equal(slot) || r.CatchUp {
				t.Fatalf("round %d: run of %s stands for %v (catch-up %v), want %v", round, ji.Name, r.Scheduled, r.CatchUp, slot)
			}
		}
		te.waitIdle()
		slot = slot.Add(time.Hour)
	}
}
