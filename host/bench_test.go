package host

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/persist"
)

// benchEngine opens an engine on a temp home holding one job file; adjust
// changes its options.
func benchEngine(b *testing.B, src string, adjust ...func(*EngineOptions)) *Engine {
	b.Helper()
	home := b.TempDir()
	p, err := whenlua.ResolvePaths(home)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Ensure(); err != nil {
		b.Fatal(err)
	}
	if err := writeFileErr(filepath.Join(p.JobsDir, "bench.lua"), src); err != nil {
		b.Fatal(err)
	}
	store, err := persist.Open(persist.Options{Dir: p.DBDir, MaintainEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	opts := EngineOptions{Store: store, Paths: p, PollEvery: -1, LuaTimeout: time.Minute, Shell: "/bin/sh",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range adjust {
		f(&opts)
	}
	e := NewEngine(opts)
	if err := e.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		e.Close(context.Background())
		store.Close()
	})
	return e
}

// BenchmarkSetWithLoadedJobs measures a durable set of a variable that one
// when-job depends on, with 10, 1,000 and 100,000 when-jobs loaded. With the
// dependency index the cost must not grow with the number of loaded jobs.
func BenchmarkSetWithLoadedJobs(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			src := fmt.Sprintf(`
when("x == -1", "true", {name="dependent"})
for i = 1, %d do when("v" .. i .. " == 1", "true") end`, n-1)
			e := benchEngine(b, src)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := e.Set(ctx, whenlua.SetRequest{Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(int64(i))}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetTracing measures what keeping evaluations for `whenlua why`
// costs a durable set: P2's set (one dependent when-job among 1,000) and a
// set that 100 when-jobs read. Two engines, one keeping evaluations and one
// not, take the sets in turn, so that the load of the machine falls on both
// alike; it reports the median of each and their ratio.
func BenchmarkSetTracing(b *testing.B) {
	for _, deps := range []int{1, 100} {
		b.Run(fmt.Sprintf("dependents=%d", deps), func(b *testing.B) {
			src := fmt.Sprintf(`
for i = 1, %d do when("x == -" .. i, "true") end
for i = 1, %d do when("v" .. i .. " == 1", "true") end`, deps, 1000-deps)
			on := benchEngine(b, src)
			off := benchEngine(b, src, func(o *EngineOptions) { o.NoEvalTrace = true })
			ctx := context.Background()
			var tOn, tOff []time.Duration
			set := func(e *Engine, i int) time.Duration {
				t0 := time.Now()
				if _, err := e.Set(ctx, whenlua.SetRequest{Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(int64(i))}}}); err != nil {
					b.Fatal(err)
				}
				return time.Since(t0)
			}
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 {
					tOn = append(tOn, set(on, i))
					tOff = append(tOff, set(off, i))
				} else {
					tOff = append(tOff, set(off, i))
					tOn = append(tOn, set(on, i))
				}
			}
			slices.Sort(tOn)
			slices.Sort(tOff)
			mOn, mOff := tOn[len(tOn)/2], tOff[len(tOff)/2]
			b.ReportMetric(float64(mOn.Microseconds()), "µs-traced-p50")
			b.ReportMetric(float64(mOff.Microseconds()), "µs-untraced-p50")
			b.ReportMetric(float64(mOn)/float64(mOff), "ratio")
		})
	}
}

// BenchmarkSetToJobStarted measures from a set to the dependent job's
// script running (it writes to a FIFO the benchmark reads), next to the
// baseline of one fsync plus exec'ing sh writing to the same FIFO, measured
// in the same run. Runs finish outside the timer.
func BenchmarkSetToJobStarted(b *testing.B) {
	fifo := filepath.Join(b.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		b.Fatal(err)
	}
	// Opened read-write so that neither side blocks in open.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1)
	script := "echo > " + fifo
	b.Run("whenlua", func(b *testing.B) {
		e := benchEngine(b, `when("changes('x')", "`+script+`", {name="j"})`)
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := e.Set(ctx, whenlua.SetRequest{Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(int64(i))}}}); err != nil {
				b.Fatal(err)
			}
			if _, err := f.Read(buf); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			for {
				if jobs, _ := e.Jobs(ctx); len(jobs) == 0 {
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StartTimer()
		}
	})
	b.Run("baseline", func(b *testing.B) {
		// A sync of an existing small file, written in place.
		sf, err := os.Create(filepath.Join(b.TempDir(), "sync"))
		if err != nil {
			b.Fatal(err)
		}
		defer sf.Close()
		rec := make([]byte, 128)
		for b.Loop() {
			if _, err := sf.WriteAt(rec, 0); err != nil {
				b.Fatal(err)
			}
			if err := sf.Sync(); err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command("sh", "-c", script)
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			if _, err := f.Read(buf); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cmd.Wait()
			b.StartTimer()
		}
	})
}

func writeFileErr(path, src string) error {
	return writeFileBytes(path, []byte(src))
}

// BenchmarkEditToActive measures, with 1,000 job files watched, the time
// from writing a new version of one file to its job being active, through
// the real watcher (fsnotify, debounce 150 ms). It reports the median and
// the files compiled per edit.
func BenchmarkEditToActive(b *testing.B) {
	home := b.TempDir()
	p, _ := whenlua.ResolvePaths(home)
	if err := p.Ensure(); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		writeFileErr(filepath.Join(p.JobsDir, fmt.Sprintf("f%04d.lua", i)), fmt.Sprintf(`when("v%d == 1", "true", {name="j%d"})`, i, i))
	}
	store, err := persist.Open(persist.Options{Dir: p.DBDir, MaintainEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(EngineOptions{Store: store, Paths: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := e.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() { e.Close(context.Background()); store.Close() }()
	ctx := context.Background()
	active := func(name string) bool {
		found := false
		e.do(ctx, func() { _, found = e.st.jobs[name] })
		return found
	}
	s0, _ := e.Status(ctx)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("edit%d", i)
		t0 := time.Now()
		writeFileErr(filepath.Join(p.JobsDir, "f0500.lua"), fmt.Sprintf(`when("v500 == 1", "true", {name=%q})`, name))
		for !active(name) {
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
	}
	s1, _ := e.Status(ctx)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(s1.Compiles-s0.Compiles)/float64(len(lat)), "compiles/edit")
}

// BenchmarkSetWithComputedNameJobs measures a durable set of one variable
// with 10,000 when-jobs that each read one variable through vars[k] with a
// computed k (the names cannot be seen before an evaluation reads them),
// next to the same jobs written with literal names. With the names read
// indexed as dependencies the two cost the same.
func BenchmarkSetWithComputedNameJobs(b *testing.B) {
	for _, tc := range []struct{ name, src string }{
		{"computed", `for i = 1, 10000 do local n = "o" .. i; when(function() return vars[n] == 1 end, "true") end`},
		{"literal", `for i = 1, 10000 do when("o" .. i .. " == 1", "true") end`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := benchEngine(b, tc.src)
			ctx := context.Background()
			before := dirBytes(e.opts.Paths.DBDir)
			n := 0
			for i := 0; b.Loop(); i++ {
				if _, err := e.Set(ctx, whenlua.SetRequest{Assignments: []whenlua.Assignment{{Name: "o1", Value: whenlua.Int(int64(i))}}}); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(dirBytes(e.opts.Paths.DBDir)-before)/float64(n), "db-bytes/set")
		})
	}
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
