package runner

import "testing"

// BenchmarkFindRun measures one pass over /proc looking for a run's
// processes, the cost a run's end adds (shared by runs ending together):
//
//	go test -run '^$' -bench FindRun ./host/runner/
func BenchmarkFindRun(b *testing.B) {
	for b.Loop() {
		findRun("/nonexistent", 0, false)
	}
}
