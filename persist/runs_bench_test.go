package persist

import (
	"fmt"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// BenchmarkRunsOfOneJobAmong10000 lists the runs of a job that has none
// among 10,000 records of 500 jobs: a scan of every record, as the
// daemon's log of a seldom-run job costs.
func BenchmarkRunsOfOneJobAmong10000(b *testing.B) {
	s := openTest(b, Options{})
	now := time.Now()
	for batch := range 100 {
		var bt whenlua.Batch
		for i := range 100 {
			n := uint64(batch*100 + i + 1)
			bt.Runs = append(bt.Runs, whenlua.Run{Serial: n, Job: fmt.Sprintf("job%d", n%500), File: "/jobs/f.lua",
				Trigger: "when", State: whenlua.RunDone, Start: now, End: now})
		}
		if err := s.Commit(&bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if runs, err := s.Runs("none", 501); err != nil || len(runs) != 0 {
			b.Fatalf("%d runs, %v", len(runs), err)
		}
	}
}
