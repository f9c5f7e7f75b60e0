package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// nextCommand is `whenlua next [JOB] [-n N]`: the next times of the
// daemon's every- and cron-jobs (or of one), and `whenlua next --cron EXPR
// [--tz Z] [--from TIME] [-n N]`: those of an expression, computed here
// without a daemon. Times are RFC 3339 with the zone's offset.
func nextCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "next",
		Usage:     "print the next times of the every- and cron-jobs, pending holds and retries, or of a cron expression, as RFC 3339 with the zone's offset",
		ArgsUsage: "[JOB]",
		Description: "Without --cron, one line per time, earliest first: the time, the job's name,\n" +
			"its schedule and its zone; the first time of each job is the one the daemon\n" +
			"has scheduled. The deadlines of when-jobs' pending holds and the pending\n" +
			"retries of failed runs are listed too. With JOB, that job's times only.\n\n" +
			"With --cron, the expression is evaluated here, without a daemon, as the\n" +
			"daemon would schedule it: in the zone of --tz (default: the local zone),\n" +
			"with DST handled as ISC cron does; one time per line. --from starts after\n" +
			"another time than now, so\n" +
			"`whenlua next --cron \"30 2 * * *\" --tz Europe/Berlin --from 2026-03-28T00:00:00+01:00`\n" +
			"shows the run of the morning the clocks skip 02:30 moved to 03:00.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cron", Usage: "evaluate the cron `EXPR` (5 fields or @daily...) instead of asking the daemon"},
			&cli.StringFlag{Name: "tz", Usage: "with --cron: read the expression in the IANA `ZONE` (default: the local zone)"},
			&cli.StringFlag{Name: "from", Usage: "start after `TIME` (RFC 3339; default: now)"},
			&cli.IntFlag{Name: "n", Value: 5, Usage: "print `N` times of each job"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.Int("n") < 1 {
				return usageErrorf("-n must be at least 1")
			}
			var from time.Time
			if s := c.String("from"); s != "" {
				var err error
				if from, err = time.Parse(time.RFC3339, s); err != nil {
					return usageErrorf("--from %q: not an RFC 3339 time (e.g. 2026-03-28T00:00:00+01:00)", s)
				}
			}
			if c.IsSet("cron") {
				if err := noArgs(c); err != nil {
					return err
				}
				return e.nextCron(c, from)
			}
			if c.IsSet("tz") {
				return usageErrorf("--tz goes with --cron; a job's zone is its tz option")
			}
			if c.NArg() > 1 {
				return usageErrorf("usage: %s [JOB] [-n N] or %s --cron EXPR [--tz ZONE]", c.Command.HelpName, c.Command.HelpName)
			}
			return e.nextJobs(c, c.Args().First(), from)
		},
	}
}

// nextCron prints the times of --cron in --tz after from (zero: now).
func (e *env) nextCron(c *cli.Context, from time.Time) error {
	loc, err := whenlua.LoadZone(c.String("tz"))
	if err != nil {
		return err
	}
	cr, err := whenlua.ParseCron(c.String("cron"), loc)
	if err != nil {
		return err
	}
	if from.IsZero() {
		from = time.Now()
	}
	times := nextTimes(cr.Next, time.Time{}, from, c.Int("n"))
	return e.printJSONOr(c, nextJSON{Cron: cr.String(), Zone: whenlua.ZoneName(loc), Times: times}, func() {
		for _, t := range times {
			fmt.Fprintln(e.stdout, t)
		}
	})
}

// nextJobs prints the times of the daemon's every- and cron-jobs (or of
// the one named) after from; with from zero, each job's first time is the
// one the daemon has scheduled.
func (e *env) nextJobs(c *cli.Context, name string, from time.Time) error {
	cl, err := e.Client()
	if err != nil {
		return err
	}
	infos, err := cl.Names(c.Context)
	if err != nil {
		return err
	}
	st, err := cl.Status(c.Context)
	if err != nil {
		return err
	}
	res := nextResult{Jobs: []nextJob{}, Holds: []whenlua.Pending{}, Retries: []whenlua.PendingRetry{}}
	for _, p := range st.Pending {
		if name == "" || p.Job == name {
			res.Holds = append(res.Holds, p)
		}
	}
	for _, r := range st.Retries {
		if name == "" || r.Job == name {
			res.Retries = append(res.Retries, r)
		}
	}
	out := res.Jobs
	found := false
	for _, j := range infos {
		if name != "" && j.Name != name {
			continue
		}
		found = true
		if j.Kind == "when" {
			if name != "" && len(res.Holds) == 0 && len(res.Retries) == 0 {
				return fmt.Errorf("%w: %s is a when-job with nothing pending: it runs when its condition becomes true, not at set times", whenlua.ErrInvalid, name)
			}
			continue
		}
		next, err := jobSchedule(j)
		if err != nil {
			return fmt.Errorf("job %s: %w", j.Name, err)
		}
		first := j.Next
		start := from
		if !from.IsZero() {
			first = time.Time{}
		} else {
			start = time.Now()
		}
		out = append(out, nextJob{Name: j.Name, Kind: j.Kind, Spec: j.Spec(), Zone: j.Zone, Times: nextTimes(next, first, start, c.Int("n"))})
	}
	if name != "" && !found {
		return fmt.Errorf("%w: no job named %q", whenlua.ErrNotFound, name)
	}
	res.Jobs = out
	if c.Bool("json") {
		return e.printJSON(res)
	}
	type line struct {
		at               time.Time
		text, name, spec string
	}
	var lines []line
	for _, j := range out {
		for _, s := range j.Times {
			at, _ := time.Parse(time.RFC3339, s)
			lines = append(lines, line{at, s, j.Name, oneLine(j.Kind+" "+j.Spec) + "\t" + j.Zone})
		}
	}
	for _, p := range res.Holds {
		lines = append(lines, line{p.Due, p.Due.Format(time.RFC3339), p.Job, "hold, true since " + p.Since.Format(time.RFC3339)})
	}
	for _, r := range res.Retries {
		lines = append(lines, line{r.At, r.At.Format(time.RFC3339), r.Job, fmt.Sprintf("retry, attempt %d of the run %d", r.Attempt, r.FirstSerial)})
	}
	slices.SortStableFunc(lines, func(a, b line) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return whenlua.CompareJobNames(a.name, b.name)
	})
	for _, l := range lines {
		fmt.Fprintf(e.stdout, "%s\t%s\t%s\n", l.text, l.name, l.spec)
	}
	return nil
}

// jobSchedule rebuilds a listed job's next-time function from its period
// or expression and zone, as the daemon computes it.
func jobSchedule(j whenlua.JobInfo) (func(time.Time) time.Time, error) {
	loc, err := whenlua.LoadZone(j.Zone)
	if err != nil {
		return nil, err
	}
	if j.Kind == "cron" {
		cr, err := whenlua.ParseCron(j.Cron, loc)
		if err != nil {
			return nil, err
		}
		return cr.Next, nil
	}
	p, err := whenlua.ParsePeriod(j.Period)
	if err != nil {
		return nil, err
	}
	return func(t time.Time) time.Time { return p.NextIn(t, loc) }, nil
}

// nextResult is `next --json` without --cron: the every- and cron-jobs'
// times, the when-jobs' pending holds and the pending retries.
type nextResult struct {
	Jobs    []nextJob              `json:"jobs"`
	Holds   []whenlua.Pending      `json:"holds"`
	Retries []whenlua.PendingRetry `json:"retries"`
}

// nextJob is one job in `next --json`.
type nextJob struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	Spec  string   `json:"schedule"`
	Zone  string   `json:"zone"`
	Times []string `json:"times"`
}

// nextJSON is `next --cron --json`'s output.
type nextJSON struct {
	Cron  string   `json:"cron"`
	Zone  string   `json:"zone"`
	Times []string `json:"times"`
}

// nextTimes lists up to n times formatted as RFC 3339 in their own zone:
// first (when not zero), then those next gives after it, or after from
// when first is zero. The list ends early where next has no more.
func nextTimes(next func(time.Time) time.Time, first, from time.Time, n int) []string {
	out := []string{}
	at := first
	if at.IsZero() {
		at = next(from)
	}
	for range n {
		if at.IsZero() {
			break
		}
		out = append(out, at.Format(time.RFC3339))
		at = next(at)
	}
	return out
}
