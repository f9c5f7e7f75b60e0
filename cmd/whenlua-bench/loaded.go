package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/whenlua/whenlua"
)

// jobsPerFile bounds the when-jobs one generated file declares: a file's
// top-level code must finish within the daemon's load time limit (2 s of
// wall time), which a loop of 100,000 when() calls exceeds, and one of
// 10,000 may on a busy machine once many jobs are loaded.
const jobsPerFile = 2000

// benchLoaded is P2: the latency of a durable set of a variable one
// when-job depends on, with 10, 1,000 and cfg.bigJobs when-jobs loaded (the
// others depend on other variables). One daemon per size; the sets go
// round-robin over the three, so that noise falls on all sizes alike.
func benchLoaded(ctx context.Context, b *bench, cfg config) ([]row, error) {
	sizes := []int{10, 1000, cfg.bigJobs}
	ds := make([]*daemon, len(sizes))
	var loads []string
	for i, n := range sizes {
		p, err := b.home(fmt.Sprintf("p2-%d", n))
		if err != nil {
			return nil, err
		}
		if err := writeJob(p, "dependent.lua", `when("x == -1", "true", {name="dependent"})`+"\n"); err != nil {
			return nil, err
		}
		for k, from := 0, 1; from < n; k, from = k+1, from+jobsPerFile {
			to := min(from+jobsPerFile-1, n-1)
			src := fmt.Sprintf("for i = %d, %d do when(\"v\" .. i .. \" == 1\", \"true\") end\n", from, to)
			if err := writeJob(p, fmt.Sprintf("many%03d.lua", k), src); err != nil {
				return nil, err
			}
		}
		t0 := time.Now()
		if ds[i], err = b.startLoaded(ctx, p, n, 5*time.Minute); err != nil {
			return nil, err
		}
		took := time.Since(t0).Round(time.Millisecond)
		b.logf("  %d when-jobs loaded in %s", n, took)
		rss, err := rssKB(ds[i].pid)
		if err != nil {
			return nil, err
		}
		loads = append(loads, fmt.Sprintf("%s in %s (RSS %.0f MiB)", thousands(n), took, float64(rss)/1024))
	}
	lat := make([][]time.Duration, len(sizes))
	warmup := 20
	for it := range cfg.setIters + warmup {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for k := range ds {
			i := (it + k) % len(ds)
			t0 := time.Now()
			if _, err := ds[i].c.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet,
				Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(int64(it))}}}); err != nil {
				return nil, err
			}
			if it >= warmup {
				lat[i] = append(lat[i], time.Since(t0))
			}
		}
	}
	var rows []row
	base := percentile(lat[0], 50)
	for i, n := range sizes {
		p50, p99 := percentile(lat[i], 50), percentile(lat[i], 99)
		r := row{
			key:    "P2",
			name:   fmt.Sprintf("set, %s when-jobs loaded, p50 (p99), n=%d", thousands(n), len(lat[i])),
			figure: fmt.Sprintf("%s (%s)", ms(p50), ms(p99)),
		}
		if i > 0 {
			r.baseline = ms(base) + " (10 jobs)"
			r.ratio = ratio(float64(p50) / float64(base))
		}
		if i == len(sizes)-1 {
			x := float64(p50) / float64(base)
			r.target = "<= 1.5x"
			r.ok = verdict(x <= 1.5)
			r.note = fmt.Sprintf("daemon start to all jobs loaded: %s (files of at most %s when-jobs)", strings.Join(loads, ", "), thousands(jobsPerFile))
			if n != 100000 {
				r.name += " (quick: 100,000 -> " + thousands(n) + ")"
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// thousands formats n with commas: 100000 -> 100,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var out strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out.WriteByte(',')
		}
		out.WriteRune(c)
	}
	return out.String()
}
