package host

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/persist"
)

// benchSets makes b.N durable sets through a real daemon's socket, split
// over clients concurrent clients, each with its own connection, and
// reports sets per second.
func benchSets(b *testing.B, clients int) {
	p := daemonHome(b)
	startDaemon(b, p)
	cs := make([]*whenlua.Client, clients)
	for i := range cs {
		cs[i] = whenlua.Dial(p.Socket)
		defer cs[i].Close()
	}
	ctx := context.Background()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g, c := range cs {
		n := b.N / clients
		if g < b.N%clients {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("bench%d", g)
			for i := range n {
				_, err := c.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet,
					Assignments: []whenlua.Assignment{{Name: name, Value: whenlua.Int(int64(i))}}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
}

// BenchmarkSetOneClient is one client setting in a loop: each set is one
// durable commit (fsync) before it is acknowledged.
func BenchmarkSetOneClient(b *testing.B) { benchSets(b, 1) }

// BenchmarkSetEightClients is eight concurrent clients: their sets share
// commits (group commit).
func BenchmarkSetEightClients(b *testing.B) { benchSets(b, 8) }

// BenchmarkBaselineAppendFsync is what a durable set is compared with: a
// 128-byte append and fsync on the same disk.
func BenchmarkBaselineAppendFsync(b *testing.B) {
	dir := b.TempDir()
	perOp, err := persist.BaselineAppendFsync(dir, b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(perOp)/float64(time.Microsecond), "µs/fsync")
	b.ReportMetric(float64(time.Second)/float64(perOp), "fsyncs/s")
}
