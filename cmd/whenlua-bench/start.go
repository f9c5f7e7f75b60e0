package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/whenlua/whenlua"
)

// benchStart is P1: from a set to the dependent job's process running. The
// job's script writes to a FIFO the bench reads. The baseline is what any
// durable trigger of a process pays: one fdatasync of an existing small
// file (written in place), then exec'ing /bin/sh to write to the same FIFO.
// The two alternate; each run finishes before the next trigger, outside
// the measurement.
func benchStart(ctx context.Context, b *bench, cfg config) ([]row, error) {
	p, err := b.home("p1")
	if err != nil {
		return nil, err
	}
	fifo := filepath.Join(p.Home, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return nil, err
	}
	// Opened read-write so that neither side blocks in open.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	script := "echo > " + fifo
	if err := writeJob(p, "p1.lua", fmt.Sprintf("when(\"changes('x')\", %q, {name=\"started\"})\n", script)); err != nil {
		return nil, err
	}
	d, err := b.startLoaded(ctx, p, 1, time.Minute)
	if err != nil {
		return nil, err
	}
	_, raw, err := baselineDir(p)
	if err != nil {
		return nil, err
	}
	defer raw.close()

	buf := make([]byte, 64)
	read := func() error {
		f.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := f.Read(buf); err != nil {
			return fmt.Errorf("read the FIFO: %w", err)
		}
		return nil
	}
	x := int64(0)
	viaDaemon := func() (time.Duration, error) {
		x++
		t0 := time.Now()
		if _, err := d.c.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet,
			Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(x)}}}); err != nil {
			return 0, err
		}
		if err := read(); err != nil {
			return 0, err
		}
		lat := time.Since(t0)
		return lat, waitIdle(ctx, d)
	}
	baseline := func() (time.Duration, error) {
		t0 := time.Now()
		if err := raw.write(); err != nil {
			return 0, err
		}
		cmd := exec.Command("/bin/sh", "-c", script)
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		if err := read(); err != nil {
			return 0, err
		}
		lat := time.Since(t0)
		return lat, cmd.Wait()
	}
	var got, base []time.Duration
	warmup := 5
	for i := range cfg.startIters + warmup {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		first, second := viaDaemon, baseline
		if i%2 == 1 {
			first, second = baseline, viaDaemon
		}
		l1, err := first()
		if err != nil {
			return nil, err
		}
		l2, err := second()
		if err != nil {
			return nil, err
		}
		if i%2 == 1 {
			l1, l2 = l2, l1
		}
		if i >= warmup {
			got, base = append(got, l1), append(base, l2)
		}
	}
	return []row{latencyRow("P1", "set -> dependent job started", "fdatasync+sh", got, base)}, nil
}

// latencyRow compares the median of got with that of base, paired in one
// run; the target is at most 1.5x.
func latencyRow(key, what, baseName string, got, base []time.Duration) row {
	p50, p99 := percentile(got, 50), percentile(got, 99)
	b50, b99 := percentile(base, 50), percentile(base, 99)
	r := float64(p50) / float64(b50)
	return row{
		key:      key,
		name:     fmt.Sprintf("%s, p50 (p99), n=%d", what, len(got)),
		figure:   fmt.Sprintf("%s (%s)", ms(p50), ms(p99)),
		baseline: fmt.Sprintf("%s (%s) %s", ms(b50), ms(b99), baseName),
		ratio:    ratio(r),
		target:   "<= 1.5x",
		ok:       verdict(r <= 1.5),
	}
}
