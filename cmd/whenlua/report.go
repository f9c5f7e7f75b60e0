package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// Bounds of one report, so that a report over a long history asks the
// daemon for a bounded amount and the page stays a few megabytes: the
// newest reportMaxRuns runs of all jobs (one scan of the run records), at
// most reportMaxJobs jobs and reportMaxVars variables (the first by name),
// each with at most --runs-per-job runs or --versions-per-var versions,
// and reportMaxVersions versions in all. The page says where a bound cut
// something off.
const (
	reportMaxRuns     = 20000
	reportMaxVersions = 20000
	reportMaxJobs     = 500
	reportMaxVars     = 500
)

// reportCommand is `whenlua report [--html FILE] [--days N]`: a static HTML
// page of the last N days, with each job's runs on a timeline and each
// variable's versions as a step plot.
func reportCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "write an HTML page of the last days: each job's runs on a timeline, each variable's history as a step plot",
		Description: "One self-contained HTML file (inline CSS and SVG, no script, nothing fetched\n" +
			"from elsewhere) written to FILE, or to stdout without --html. Each job has a\n" +
			"timeline of its runs in the window: successes, failures, lost, cancelled,\n" +
			"refused and running runs each in their own colour, a run's width its\n" +
			"duration; hovering a run shows its serial, times and exit. Each variable\n" +
			"set in the window has a step plot of its versions (numbers on a scale,\n" +
			"strings and booleans as labelled steps) and a table of them; variables\n" +
			"not set in the window are listed with their value. The page is bounded:\n" +
			"it reads the newest 20000 runs of all jobs and shows at most --runs-per-job\n" +
			"runs of each job and --versions-per-var versions of each variable (the\n" +
			"newest), 20000 versions in all, at most 500 jobs and 500 variables (the\n" +
			"first by name), string values cut after 200 bytes; the page says where\n" +
			"something was left out. Times are local. A variable unset now is not shown.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "html", Usage: "write the page to `FILE` instead of stdout"},
			&cli.IntFlag{Name: "days", Value: 7, Usage: "show the last `N` days"},
			&cli.IntFlag{Name: "runs-per-job", Value: 2000, Usage: "show at most the newest `N` runs of each job"},
			&cli.IntFlag{Name: "versions-per-var", Value: 1000, Usage: "show at most the newest `N` versions of each variable"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			opts := reportOptions{
				days:        c.Int("days"),
				runsPerJob:  c.Int("runs-per-job"),
				versPerVar:  c.Int("versions-per-var"),
				maxRuns:     reportMaxRuns,
				maxVersions: reportMaxVersions,
				maxJobs:     reportMaxJobs,
				maxVars:     reportMaxVars,
				now:         time.Now(),
				generatedBy: whenlua.BuildVersion,
			}
			if err := opts.validate(); err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			data, err := gatherReport(c.Context, cl, opts)
			if err != nil {
				return err
			}
			if p, err := e.Paths(); err == nil {
				data.Home = p.Where()
			}
			var buf bytes.Buffer
			if err := renderReport(&buf, data); err != nil {
				return fmt.Errorf("render the report: %w", err)
			}
			if path := c.String("html"); path != "" {
				if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
					return fmt.Errorf("write the report: %w", err)
				}
				return nil
			}
			_, err = e.stdout.Write(buf.Bytes())
			return err
		},
	}
}

// reportOptions are the window and the bounds of one report.
type reportOptions struct {
	days                   int
	runsPerJob, versPerVar int
	maxRuns, maxVersions   int
	maxJobs, maxVars       int
	now                    time.Time
	generatedBy            string
}

// maxReportDays bounds --days to about ten years, far beyond any retention.
const maxReportDays = 3660

func (o reportOptions) validate() error {
	switch {
	case o.days < 1 || o.days > maxReportDays:
		return usageErrorf("--days must be between 1 and %d, got %d", maxReportDays, o.days)
	case o.runsPerJob < 1:
		return usageErrorf("--runs-per-job must be at least 1, got %d", o.runsPerJob)
	case o.versPerVar < 1:
		return usageErrorf("--versions-per-var must be at least 1, got %d", o.versPerVar)
	}
	return nil
}

// reportSource is what a report reads from the daemon.
type reportSource interface {
	Names(ctx context.Context) ([]whenlua.JobInfo, error)
	Jobs(ctx context.Context) ([]whenlua.Run, error)
	Log(ctx context.Context, job string, n int) ([]whenlua.Run, error)
	Vars(ctx context.Context) (map[string]whenlua.Value, error)
	History(ctx context.Context, name string, n int) ([]whenlua.Version, error)
}

// reportJob is one job's runs in the window, newest first.
type reportJob struct {
	Name   string
	Kind   string // "" for a job no longer loaded
	Spec   string
	Runs   []whenlua.Run
	Capped bool // older runs in the window were left out
}

// reportVar is one variable's versions in the window, oldest first, and
// the version before the window (Before), whose value the plot starts with.
type reportVar struct {
	Name     string
	Current  whenlua.Value
	Before   *whenlua.Version
	Versions []whenlua.Version
	Capped   bool // older versions in the window were left out
	Limit    int  // the most versions asked for
}

// reportData is everything a page shows.
type reportData struct {
	From, To    time.Time
	Days        int
	Home        string
	GeneratedBy string
	Jobs        []reportJob
	JobsLeft    int  // jobs beyond maxJobs, not shown
	RunsCut     bool // maxRuns runs were read and older ones fall in the window
	MaxRuns     int
	Vars        []reportVar
	VarsLeft    int // variables beyond maxVars, not shown
	RunsPerJob  int
}

// gatherReport reads the window's runs and versions from the daemon: the
// newest runs of all jobs in one bounded call, then one bounded call per
// variable.
func gatherReport(ctx context.Context, src reportSource, o reportOptions) (reportData, error) {
	d := reportData{
		To: o.now, From: o.now.AddDate(0, 0, -o.days), Days: o.days, GeneratedBy: o.generatedBy,
		RunsPerJob: o.runsPerJob, MaxRuns: o.maxRuns,
	}
	infos, err := src.Names(ctx)
	if err != nil {
		return d, err
	}
	running, err := src.Jobs(ctx)
	if err != nil {
		return d, err
	}
	// One scan of the run records serves every job: the daemon's Log of
	// one job scans them all as well when the job seldom runs. One more
	// than the bound tells whether the bound cut the window.
	finished, err := src.Log(ctx, "", o.maxRuns+1)
	if err != nil {
		return d, err
	}
	if len(finished) > o.maxRuns {
		d.RunsCut = inWindow(finished[o.maxRuns], d.From, d.To)
		finished = finished[:o.maxRuns]
	}
	jobs := map[string]*reportJob{}
	for _, ji := range infos {
		jobs[ji.Name] = &reportJob{Name: ji.Name, Kind: ji.Kind, Spec: ji.Spec()}
	}
	kept := map[string]int{} // finished runs kept, by job
	for _, r := range slices.Concat(running, finished) {
		if !inWindow(r, d.From, d.To) {
			continue
		}
		j := jobs[r.Job]
		if j == nil {
			// A job no longer loaded, with runs in the window.
			j = &reportJob{Name: r.Job}
			jobs[r.Job] = j
		}
		if r.State != whenlua.RunRunning && r.State != whenlua.RunQueued {
			if kept[r.Job] == o.runsPerJob {
				j.Capped = true
				continue
			}
			kept[r.Job]++
		}
		j.Runs = append(j.Runs, r)
	}
	names := make([]string, 0, len(jobs))
	for n := range jobs {
		names = append(names, n)
	}
	slices.SortFunc(names, whenlua.CompareJobNames)
	if len(names) > o.maxJobs {
		d.JobsLeft = len(names) - o.maxJobs
		names = names[:o.maxJobs]
	}
	for _, n := range names {
		d.Jobs = append(d.Jobs, *jobs[n])
	}

	vars, err := src.Vars(ctx)
	if err != nil {
		return d, err
	}
	vnames := make([]string, 0, len(vars))
	for n := range vars {
		vnames = append(vnames, n)
	}
	slices.Sort(vnames)
	if len(vnames) > o.maxVars {
		d.VarsLeft = len(vnames) - o.maxVars
		vnames = vnames[:o.maxVars]
	}
	budget := o.maxVersions
	for i, n := range vnames {
		limit := min(o.versPerVar, budget)
		if limit == 0 {
			d.VarsLeft += len(vnames) - i
			break
		}
		// The newest versions, and one more: either the version before the
		// window, which the plot starts from, or a sign of the bound.
		vs, err := src.History(ctx, n, limit+1)
		if err != nil {
			return d, err
		}
		v := reportVar{Name: n, Current: cutValue(vars[n]), Limit: limit}
		for i := range vs {
			vs[i].Value = cutValue(vs[i].Value)
		}
		for i, ver := range vs {
			if ver.Time.Before(d.From) {
				v.Before = &vs[i]
				break
			}
			if len(v.Versions) == limit {
				v.Capped = true
				break
			}
			v.Versions = append(v.Versions, ver)
		}
		budget -= len(v.Versions)
		slices.Reverse(v.Versions)
		d.Vars = append(d.Vars, v)
	}
	return d, nil
}

// inWindow tells whether any of run r falls between from and to: a run
// still going counts until to.
func inWindow(r whenlua.Run, from, to time.Time) bool {
	start, end := runSpan(r, to)
	return !end.Before(from) && !start.After(to)
}

// runSpan is the time run r took: from its start (or, for a run that never
// left the queue, the time it was queued) to its end, or to now while it
// runs or waits.
func runSpan(r whenlua.Run, now time.Time) (time.Time, time.Time) {
	start, end := r.Start, r.End
	if start.IsZero() {
		start = r.Queued
	}
	if start.IsZero() {
		start = end
	}
	if end.IsZero() {
		end = now
	}
	if end.Before(start) {
		end = start
	}
	return start, end
}
