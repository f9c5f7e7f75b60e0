package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/whenlua/whenlua"
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

// BenchmarkBaselineRewriteFsync is what a durable set is compared with:
// whenjobs' way of storing variables, a 4 KiB file of them all rewritten,
// fsynced and renamed over the old one.
func BenchmarkBaselineRewriteFsync(b *testing.B) {
	dir := b.TempDir()
	body := make([]byte, 4096)
	for b.Loop() {
		f, err := os.Create(filepath.Join(dir, "variables.tmp"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(body); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := os.Rename(f.Name(), filepath.Join(dir, "variables")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
