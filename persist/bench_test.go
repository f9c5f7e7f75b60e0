package persist

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/whenlua/whenlua"
)

// Run: go test ./persist/ -run '^$' -bench . -benchtime 2s
// cmd/whenlua-bench compares the daemon's sets with raw fsync loops.

func BenchmarkCommitOneVar(b *testing.B) {
	s := openTest(b, Options{})
	b.ResetTimer()
	for i := range b.N {
		if err := s.Commit(&Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(int64(i)), Origin: "cli"}}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitParallel8 has 8 goroutines commit single-variable batches
// concurrently. ns/op is the time per commit across all of them. Badger
// writes the commits waiting at one moment together, with one sync.
func BenchmarkCommitParallel8(b *testing.B) {
	s := openTest(b, Options{})
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((8 + procs - 1) / procs) // 8 goroutines, or the next multiple of GOMAXPROCS
	var id atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		name := fmt.Sprint("v", id.Add(1))
		i := int64(0)
		for pb.Next() {
			i++
			if err := s.Commit(&Batch{Vars: []VarChange{{Name: name, Value: whenlua.Int(i), Origin: "cli"}}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkOpen reports the Go heap a freshly opened store holds.
func BenchmarkOpen(b *testing.B) {
	var grew int64
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		before := heapAlloc()
		b.StartTimer()
		s, err := Open(Options{Dir: dir, Logger: quietLogger, MaintainEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		grew = heapAlloc() - before
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(grew)/(1<<20), "heap-MiB")
}

// BenchmarkCommitBigBatch commits 100 variables of 64 KiB and 10,000 job
// states as one transaction.
func BenchmarkCommitBigBatch(b *testing.B) {
	s := openTest(b, Options{})
	batch := bigBatch("0123456789abcdef", 10000)
	b.ResetTimer()
	for range b.N {
		if err := s.Commit(batch); err != nil {
			b.Fatal(err)
		}
	}
}
