package main

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// pastSource serves runs and versions stamped in the past, which a live
// daemon cannot record: it stands in for the daemon only to inject time.
type pastSource struct {
	names   []whenlua.JobInfo
	running []whenlua.Run
	runs    []whenlua.Run // newest first, as Log gives them
	vars    map[string]whenlua.Value
	history map[string][]whenlua.Version // newest first
	asked   []string
}

func (s *pastSource) Names(context.Context) ([]whenlua.JobInfo, error) { return s.names, nil }
func (s *pastSource) Jobs(context.Context) ([]whenlua.Run, error)      { return s.running, nil }
func (s *pastSource) Vars(context.Context) (map[string]whenlua.Value, error) {
	return s.vars, nil
}

func (s *pastSource) Log(_ context.Context, job string, n int) ([]whenlua.Run, error) {
	s.asked = append(s.asked, "log "+job)
	var out []whenlua.Run
	for _, r := range s.runs {
		if (job == "" || r.Job == job) && (n <= 0 || len(out) < n) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *pastSource) History(_ context.Context, name string, n int) ([]whenlua.Version, error) {
	s.asked = append(s.asked, "history "+name)
	vs := s.history[name]
	if n > 0 && len(vs) > n {
		vs = vs[:n]
	}
	return vs, nil
}

func TestReportTakesWhatFallsInTheWindowAndTheValueBeforeIt(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ago := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
	run := func(serial uint64, job string, start, end time.Time) whenlua.Run {
		return whenlua.Run{Serial: serial, Job: job, State: whenlua.RunDone, Start: start, End: end}
	}
	src := &pastSource{
		names: []whenlua.JobInfo{{Name: "daily", Kind: "every", Period: "1 day"}},
		running: []whenlua.Run{
			{Serial: 9, Job: "daily", State: whenlua.RunRunning, Start: ago(1)},
			{Serial: 10, Job: "daily", State: whenlua.RunQueued, Queued: now.Add(-time.Minute)},
		},
		runs: []whenlua.Run{
			run(8, "gone", ago(5), ago(5)),      // of a job no longer loaded
			run(7, "daily", ago(30), ago(29)),   // in the window
			run(6, "daily", ago(49), ago(47)),   // began before the window, ended in it
			run(5, "daily", ago(80), ago(79)),   // before the window
			run(4, "old", ago(100), ago(100)),   // a job gone before the window
			run(3, "daily", ago(200), ago(199)), // before the window
			run(2, "daily", ago(300), ago(299)), // before the window
			run(1, "daily", ago(400), ago(399)), // before the window
		},
		vars: map[string]whenlua.Value{"t": whenlua.Int(4), "quiet": whenlua.String("q")},
		history: map[string][]whenlua.Version{
			"t": {
				{Value: whenlua.Int(4), Time: ago(2)},
				{Value: whenlua.Nil, Time: ago(3)},
				{Value: whenlua.Int(2), Time: ago(20)},
				{Value: whenlua.Int(9), Time: ago(60)}, // before the window: where the plot starts
				{Value: whenlua.Int(1), Time: ago(70)},
			},
			"quiet": {{Value: whenlua.String("q"), Time: ago(100)}},
		},
	}
	d, err := gatherReport(context.Background(), src, reportOptions{days: 2, runsPerJob: 10, versPerVar: 10, maxRuns: 100, maxVersions: 100, maxJobs: 10, maxVars: 10, now: now})
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, j := range d.Jobs {
		var serials []string
		for _, r := range j.Runs {
			serials = append(serials, strconv.FormatUint(r.Serial, 10))
		}
		jobs = append(jobs, j.Name+" "+strings.Join(serials, ","))
	}
	if want := []string{"daily 9,10,7,6", "gone 8"}; !slices.Equal(jobs, want) || d.RunsCut {
		t.Errorf("runs by job: %q, want %q; cut %v", jobs, want, d.RunsCut)
	}
	if len(d.Vars) != 2 || d.Vars[1].Name != "t" || d.Vars[0].Name != "quiet" {
		t.Fatalf("vars: %+v", d.Vars)
	}
	tv := d.Vars[1]
	if tv.Before == nil || tv.Before.Value != whenlua.Int(9) || len(tv.Versions) != 3 || tv.Versions[0].Value != whenlua.Int(2) || tv.Capped {
		t.Errorf("t: before %+v, versions %+v, capped %v", tv.Before, tv.Versions, tv.Capped)
	}
	if q := d.Vars[0]; len(q.Versions) != 0 || q.Before == nil {
		t.Errorf("quiet: %+v", q)
	}

	var page bytes.Buffer
	if err := renderReport(&page, d); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, want := range []string{
		`<g class="before num">`,      // t's value before the window
		`<td>quiet</td><td>q</td>`,    // listed, not plotted
		"not loaded",                  // the job gone from the files
		`<rect class="run running" x`, // the running and the queued run
		`<path class="risers" d="M`,   // the plot's vertical moves
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not hold %q", want)
		}
	}
	if n := strings.Count(html, `<g class="step `); n != 3 {
		t.Errorf("%d steps on the page, want t's 3", n)
	}
}

func TestReportAsksForTheRunsOnceAndForEachVariableWithinBounds(t *testing.T) {
	now := time.Now()
	src := &pastSource{vars: map[string]whenlua.Value{}, history: map[string][]whenlua.Version{}}
	for _, n := range []string{"a", "b", "c", "d"} {
		src.names = append(src.names, whenlua.JobInfo{Name: n, Kind: "when"})
		src.vars[n] = whenlua.Int(1)
		for i := range 5 {
			src.history[n] = append(src.history[n], whenlua.Version{Value: whenlua.Int(int64(i)), Time: now.Add(-time.Duration(i) * time.Minute)})
		}
	}
	for i := range 20 {
		src.runs = append(src.runs, whenlua.Run{Serial: uint64(20 - i), Job: string(rune('a' + i%4)), State: whenlua.RunDone, Start: now.Add(-time.Duration(i) * time.Minute), End: now})
	}
	d, err := gatherReport(context.Background(), src, reportOptions{days: 1, runsPerJob: 2, versPerVar: 3, maxRuns: 12, maxVersions: 5, maxJobs: 3, maxVars: 3, now: now})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"log ", "history a", "history b"}; !slices.Equal(src.asked, want) {
		t.Errorf("calls: %q, want %q", src.asked, want)
	}
	if d.JobsLeft != 1 || d.VarsLeft != 2 || len(d.Jobs) != 3 || len(d.Vars) != 2 || !d.RunsCut {
		t.Errorf("left out %d jobs and %d vars; shown %d and %d; runs cut %v", d.JobsLeft, d.VarsLeft, len(d.Jobs), len(d.Vars), d.RunsCut)
	}
	for _, j := range d.Jobs {
		if len(j.Runs) != 2 || !j.Capped {
			t.Errorf("job %s: %d runs, capped %v", j.Name, len(j.Runs), j.Capped)
		}
	}
	// a takes 3 versions of the 5 in all, b the 2 left, c none: it is
	// left out with d, beyond the 3 variables.
	for i, v := range d.Vars {
		want := 3 - i
		if len(v.Versions) != want || v.Limit != want || !v.Capped || v.Versions[want-1].Value != whenlua.Int(0) {
			t.Errorf("var %s: %+v, capped %v, limit %d", v.Name, v.Versions, v.Capped, v.Limit)
		}
	}
	var page bytes.Buffer
	if err := renderReport(&page, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 more job(s) are not shown", "2 more variable(s) are not shown", "only the newest 2 are shown", "Only the newest 12 runs of all jobs were read"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the page does not say %q", want)
		}
	}
}

// BenchmarkReportPageAtItsBounds renders a page holding as much as a
// report takes: 20,000 runs of 500 jobs and 20,000 versions of 20
// variables; it reports the page's size.
func BenchmarkReportPageAtItsBounds(b *testing.B) {
	now := time.Now()
	src := &pastSource{vars: map[string]whenlua.Value{}, history: map[string][]whenlua.Version{}}
	for i := range 500 {
		src.names = append(src.names, whenlua.JobInfo{Name: "job" + strconv.Itoa(i), Kind: "when", Cond: "x > " + strconv.Itoa(i)})
	}
	for i := range reportMaxRuns {
		start := now.Add(-time.Duration(i) * 30 * time.Second)
		src.runs = append(src.runs, whenlua.Run{Serial: uint64(reportMaxRuns - i), Job: "job" + strconv.Itoa(i%500),
			State: whenlua.RunDone, Code: i % 3, Start: start, End: start.Add(time.Second)})
	}
	for v := range 20 {
		name := "v" + strconv.Itoa(v)
		src.vars[name] = whenlua.Int(1)
		for i := range 1000 {
			val := whenlua.Float(float64(i % 17))
			if v%2 == 1 {
				val = whenlua.String("state-" + strconv.Itoa(i%5))
			}
			src.history[name] = append(src.history[name], whenlua.Version{Value: val, Time: now.Add(-time.Duration(i) * 10 * time.Minute), Origin: "cli"})
		}
	}
	opts := reportOptions{days: 7, runsPerJob: 2000, versPerVar: 1000, maxRuns: reportMaxRuns, maxVersions: reportMaxVersions,
		maxJobs: reportMaxJobs, maxVars: reportMaxVars, now: now}
	var size int
	for range b.N {
		d, err := gatherReport(context.Background(), src, opts)
		if err != nil {
			b.Fatal(err)
		}
		var page bytes.Buffer
		if err := renderReport(&page, d); err != nil {
			b.Fatal(err)
		}
		size = page.Len()
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB/page")
}
