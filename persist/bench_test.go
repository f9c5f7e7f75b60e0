package persist

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// Run: go test ./persist/ -run '^$' -bench . -benchtime 2s
//
// Each commit benchmark also reports "x-fsync": its time per commit divided
// by the raw 128-byte append+fsync of BaselineAppendFsync on the same disk.

var (
	baselineOnce sync.Once
	baseline     time.Duration
)

// rawFsync measures the baseline once per test binary.
func rawFsync(b *testing.B) time.Duration {
	baselineOnce.Do(func() {
		var err error
		if baseline, err = BaselineAppendFsync(b.TempDir(), 2000); err != nil {
			b.Fatal(err)
		}
	})
	return baseline
}

func reportRatio(b *testing.B) {
	if b.N == 0 {
		return
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/float64(rawFsync(b).Nanoseconds()), "x-fsync")
}

func BenchmarkCommitOneVar(b *testing.B) {
	rawFsync(b)
	s := openTest(b, Options{})
	b.ResetTimer()
	for i := range b.N {
		if err := s.Commit(&Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(int64(i)), Origin: "cli"}}}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRatio(b)
}

// BenchmarkCommitParallel8 has 8 goroutines commit single-variable batches
// concurrently. ns/op is the time per commit across all of them. The
// commits waiting at one moment are written to the commit log as one group
// sharing one fdatasync.
func BenchmarkCommitParallel8(b *testing.B) {
	rawFsync(b)
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
	b.StopTimer()
	reportRatio(b)
}

func BenchmarkBaselineAppendFsync(b *testing.B) {
	dir := b.TempDir()
	b.ResetTimer()
	if _, err := BaselineAppendFsync(dir, b.N); err != nil {
		b.Fatal(err)
	}
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
