package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whenlua/whenlua"
)

// benchThroughput is P4: durable sets per second from one client and from
// eight concurrent clients (each its own Client and variable), next to two
// loops in the same home's filesystem: whenjobs' way of storing variables
// (rewrite a 4 KiB file of them all, fsync, rename), which the targets
// name, and the raw in-place fdatasync of a preallocated file, the most
// this disk does. Each round measures the four in turn (in a rotating
// order); a ratio is the median over rounds of the ratio within a round.
func benchThroughput(ctx context.Context, b *bench, cfg config) ([]row, error) {
	p, err := b.home("p4")
	if err != nil {
		return nil, err
	}
	d, err := b.start(ctx, p)
	if err != nil {
		return nil, err
	}
	fsyncDir, raw, err := baselineDir(p)
	if err != nil {
		return nil, err
	}
	clients := make([]*whenlua.Client, 8)
	for i := range clients {
		clients[i] = whenlua.Dial(p.Socket)
		defer clients[i].Close()
	}

	defer raw.close()
	wj := newWhenjobsStore(fsyncDir)
	loop := func(write func() error) func() (float64, error) {
		return func() (float64, error) {
			n, t0 := 0, time.Now()
			for time.Since(t0) < cfg.roundLength {
				if err := write(); err != nil {
					return 0, err
				}
				n++
			}
			return float64(n) / time.Since(t0).Seconds(), nil
		}
	}
	// The daemon's CPU time (utime+stime) per set, by number of clients.
	cpu := map[int]time.Duration{}
	count := map[int]int64{}
	sets := func(k int) func() (float64, error) {
		return func() (float64, error) {
			c0, err := cpuTime(d.pid)
			if err != nil {
				return 0, err
			}
			var n atomic.Int64
			var wg sync.WaitGroup
			errs := make([]error, k)
			t0 := time.Now()
			for g := range k {
				wg.Add(1)
				go func() {
					defer wg.Done()
					name := fmt.Sprintf("b%d", g)
					for i := int64(0); time.Since(t0) < cfg.roundLength; i++ {
						if _, err := clients[g].Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet,
							Assignments: []whenlua.Assignment{{Name: name, Value: whenlua.Int(i)}}}); err != nil {
							errs[g] = err
							return
						}
						n.Add(1)
					}
				}()
			}
			wg.Wait()
			el := time.Since(t0)
			for _, err := range errs {
				if err != nil {
					return 0, err
				}
			}
			c1, err := cpuTime(d.pid)
			if err != nil {
				return 0, err
			}
			cpu[k] += c1 - c0
			count[k] += n.Load()
			return float64(n.Load()) / el.Seconds(), nil
		}
	}
	kinds := []func() (float64, error){loop(wj.write), loop(raw.write), sets(1), sets(8)}
	// A short warm-up of each, not counted.
	for _, k := range kinds {
		if _, err := k(); err != nil {
			return nil, err
		}
	}
	clear(cpu)
	clear(count)
	var base, fsyncs, one, eight, r1, r8, f1, f8 []float64
	for round := range cfg.rounds {
		got := make([]float64, len(kinds))
		for j := range kinds {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			i := (round + j) % len(kinds)
			if got[i], err = kinds[i](); err != nil {
				return nil, err
			}
		}
		base, fsyncs = append(base, got[0]), append(fsyncs, got[1])
		one, eight = append(one, got[2]), append(eight, got[3])
		r1, r8 = append(r1, got[2]/got[0]), append(r8, got[3]/got[0])
		f1, f8 = append(f1, got[2]/got[1]), append(f8, got[3]/got[1])
	}
	perSet := func(k int) string {
		if count[k] == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f µs", float64(cpu[k])/float64(count[k])/float64(time.Microsecond))
	}
	note := fmt.Sprintf("daemon CPU (utime+stime) per set: %s with 1 client, %s with 8 clients; "+
		"whenjobs-style: rewrite a 4 KiB file, fsync, rename; raw in-place fdatasync of a preallocated file: %.0f /s, "+
		"sets over it %.2fx with 1 client, %.2fx with 8",
		perSet(1), perSet(8), median(fsyncs), median(f1), median(f8))
	// setsRow is the row of the sets from the clients: the median rate and
	// the median ratio to the whenjobs-style loop, which must reach least.
	setsRow := func(clients string, rates, ratios []float64, least float64) row {
		return row{
			key:      "P4",
			name:     fmt.Sprintf("durable sets/s, %s, median of %d rounds", clients, cfg.rounds),
			figure:   fmt.Sprintf("%.0f /s", median(rates)),
			baseline: fmt.Sprintf("%.0f whenjobs-style/s", median(base)),
			ratio:    ratio(median(ratios)),
			target:   fmt.Sprintf(">= %gx", least),
			ok:       verdict(median(ratios) >= least),
		}
	}
	eightRow := setsRow("8 clients", eight, r8, 4)
	eightRow.note = note
	return []row{setsRow("1 client", one, r1, 1), eightRow}, nil
}
