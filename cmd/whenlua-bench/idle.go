package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/whenlua/whenlua"
)

// idleFiles and idleJobsPerFile shape the job files of P5 and P7.
const (
	idleFiles       = 100
	idleJobsPerFile = 10
)

// idleJobFile returns job file k of P5/P7: five when-jobs (string and
// function conditions over their own variables) and five every-jobs whose
// periods are a day or longer, so that none is due in a short window.
func idleJobFile(k int) string {
	var s strings.Builder
	fmt.Fprintf(&s, "when(\"a%d > 5\", \"echo a is $a\")\n", k)
	fmt.Fprintf(&s, "when(\"changes('b%d')\", \"true\")\n", k)
	fmt.Fprintf(&s, "when(function() return vars.c%d == \"x\" end, \"true\")\n", k)
	fmt.Fprintf(&s, "when(\"d%d == 1 and e%d == 2\", \"true\")\n", k, k)
	fmt.Fprintf(&s, "when(\"increases('f%d')\", \"true\", {timeout = \"1m\"})\n", k)
	for _, period := range []string{"day", "2 days", "week", "month", "year"} {
		fmt.Fprintf(&s, "every(%q, \"date > /dev/null\")\n", period)
	}
	return s.String()
}

// cronJobs is how many cron jobs the schedule-cost daemon of P8 loads.
const cronJobs = 10000

// cronJobFile returns job file k of P8: jobs from..to-1, cron jobs at
// spread minutes and hours of 29 February in a few zones, so that none is
// due in the window while the scheduler holds them all.
func cronJobFile(from, to int) string {
	return fmt.Sprintf(`local zones = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"}
for i = %d, %d do
  cron(string.format("%%d %%d 29 2 *", i %% 60, math.floor(i / 60) %% 24), "true",
       { name = "c" .. i, tz = zones[i %% #zones + 1] })
end
`, from, to-1)
}

// tickScript appends the time the script runs, in nanoseconds since the
// epoch, to file.
func tickScript(file string) string {
	return fmt.Sprintf("echo $(date +%%s%%N) >> %s", file)
}

// benchIdle measures P5, P6 and P7 with three daemons side by side: one
// with no job file (the baseline of P5 and P7), one with 100 job files of
// 10 jobs each, and one with an every-second job. After a settle period
// one window measures the every-second job's lateness (next to a timer in
// this process starting the same script at each half second), the idle CPU
// of the first two and, at its end, their resident memory.
func benchIdle(ctx context.Context, b *bench, cfg config) ([]row, error) {
	pe, err := b.home("p5-empty")
	if err != nil {
		return nil, err
	}
	pi, err := b.home("p5-jobs")
	if err != nil {
		return nil, err
	}
	for k := range idleFiles {
		if err := writeJob(pi, fmt.Sprintf("idle%03d.lua", k), idleJobFile(k)); err != nil {
			return nil, err
		}
	}
	ps, ticks, err := tickHome(b, "p6")
	if err != nil {
		return nil, err
	}
	pc, cronTicks, err := tickHome(b, "p8")
	if err != nil {
		return nil, err
	}
	for k, from := 0, 0; from < cronJobs; k, from = k+1, from+jobsPerFile {
		if err := writeJob(pc, fmt.Sprintf("cron%02d.lua", k), cronJobFile(from, min(from+jobsPerFile, cronJobs))); err != nil {
			return nil, err
		}
	}
	empty, err := b.start(ctx, pe)
	if err != nil {
		return nil, err
	}
	idle, err := b.startLoaded(ctx, pi, idleFiles*idleJobsPerFile, time.Minute)
	if err != nil {
		return nil, err
	}
	every, err := b.startLoaded(ctx, ps, 1, time.Minute)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	crons, err := b.startLoaded(ctx, pc, cronJobs+1, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	cronLoad := time.Since(t0).Round(time.Millisecond)
	b.logf("  %d cron jobs loaded in %s", cronJobs, cronLoad)
	st, err := idle.c.Status(ctx)
	if err != nil {
		return nil, err
	}
	b.logf("  settling for %s, then a window of %s", cfg.settle, cfg.window)
	if err := sleep(ctx, cfg.settle); err != nil {
		return nil, err
	}

	daemons := []*daemon{empty, idle, every, crons}
	cpu0, err := cpuTimes(daemons)
	if err != nil {
		return nil, err
	}
	ws := time.Now()
	we := ws.Add(cfg.window)
	baseTicks := filepath.Join(ps.Home, "baseline-ticks")
	waitBaseline := timerTicks(ctx, baseTicks, we)
	if err := sleep(ctx, time.Until(we)); err != nil {
		return nil, err
	}
	el := time.Since(ws)
	perMin := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * float64(time.Minute) / float64(el))
	}
	cpu1, err := cpuTimes(daemons)
	if err != nil {
		return nil, err
	}
	// The CPU time each daemon used in the window, scaled to a minute.
	cpuE, cpuI, cpuS, cpuC := perMin(cpu1[0]-cpu0[0]), perMin(cpu1[1]-cpu0[1]), perMin(cpu1[2]-cpu0[2]), perMin(cpu1[3]-cpu0[3])
	rssE, err := rssKB(empty.pid)
	if err != nil {
		return nil, err
	}
	rssI, err := rssKB(idle.pid)
	if err != nil {
		return nil, err
	}
	late, expected, err := daemonTicks(ticks, ws, we)
	if err != nil {
		return nil, err
	}
	cronLate, _, err := daemonTicks(cronTicks, ws, we)
	if err != nil {
		return nil, err
	}
	if len(cronLate) == 0 {
		return nil, fmt.Errorf("the every-second job beside the cron jobs did not run in the window")
	}
	baseLate, err := waitBaseline()
	if err != nil {
		return nil, err
	}
	if len(late) == 0 {
		return nil, fmt.Errorf("the every-second job did not run in the window")
	}

	due := "none due"
	for _, j := range st.Next {
		if !j.Next.IsZero() && j.Next.Before(we) {
			due = fmt.Sprintf("%s due at %s", j.Name, j.Next.UTC().Format(time.TimeOnly))
			break
		}
	}
	mb := func(kb int) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
	scaled := ""
	if el < 59*time.Second {
		scaled = ", scaled to a minute"
	}
	p50, p99 := percentile(late, 50), percentile(late, 99)
	b50, b99 := percentile(baseLate, 50), percentile(baseLate, 99)
	cpuRatio := "-"
	if cpuE > 0 {
		cpuRatio = ratio(float64(cpuI) / float64(cpuE))
	}
	lateName := fmt.Sprintf("every-second start lateness, p50 (p99), %d runs of %d", len(late), expected)
	return []row{{
		key:      "P5",
		name:     fmt.Sprintf("idle RSS, %d files x %d jobs, after %s", idleFiles, idleJobsPerFile, (cfg.settle + cfg.window).Round(time.Second)),
		figure:   mb(rssI),
		baseline: mb(rssE) + " no files",
		ratio:    ratio(float64(rssI) / float64(rssE)),
		target:   "<= 30 MiB",
		ok:       verdict(rssI <= 30*1024),
	}, {
		key:      "P6",
		name:     lateName,
		figure:   fmt.Sprintf("%s (%s)", ms(p50), ms(p99)),
		baseline: fmt.Sprintf("%s (%s) timer+sh", ms(b50), ms(b99)),
		ratio:    ratio(float64(p99)/float64(b99)) + " p99",
		target:   "p99 <= 20 ms",
		ok:       verdict(p99 <= 20*time.Millisecond),
		note: fmt.Sprintf("lateness includes starting /bin/sh and date (the baseline pays the same from a timer in the bench, at half seconds); "+
			"max %s, %d runs later than 20 ms (baseline: max %s, %d)", ms(slices.Max(late)), over(late, 20*time.Millisecond),
			ms(slices.Max(baseLate)), over(baseLate, 20*time.Millisecond)),
	}, {
		key:      "P7",
		name:     fmt.Sprintf("idle CPU, %d files x %d jobs, over %s%s, %s", idleFiles, idleJobsPerFile, el.Round(time.Second), scaled, due),
		figure:   fmt.Sprintf("%d ms/min", cpuI.Milliseconds()),
		baseline: fmt.Sprintf("%d ms/min no files", cpuE.Milliseconds()),
		ratio:    cpuRatio,
		target:   "<= 50 ms/min",
		ok:       verdict(cpuI <= 50*time.Millisecond),
		note:     fmt.Sprintf("utime+stime count in %s ticks: +-%d ms/min over this window", clockTick, perMin(clockTick).Milliseconds()),
	}, {
		key:      "P9",
		name:     fmt.Sprintf("schedule cost: %s cron jobs loaded (in %s) beside the every-second job, CPU and lateness p99", thousands(cronJobs), cronLoad),
		figure:   fmt.Sprintf("%d ms/min, %s", cpuC.Milliseconds(), ms(percentile(cronLate, 99))),
		baseline: fmt.Sprintf("%d ms/min, %s P6 daemon", cpuS.Milliseconds(), ms(p99)),
		ratio:    ratio(float64(percentile(cronLate, 99))/float64(p99)) + " p99",
		target:   "p99 <= 20 ms",
		ok:       verdict(percentile(cronLate, 99) <= 20*time.Millisecond),
		note: fmt.Sprintf("the same every-second job as P6, in a daemon that also holds %s cron jobs on 29 February in five zones (none due); "+
			"the CPU is the whole daemon's, its every-second runs included, beside the P6 daemon's", thousands(cronJobs)),
	}}, nil
}

// tickHome makes the home name with one job, "tick", that runs the tick
// script every second, and returns it and the file the script writes.
func tickHome(b *bench, name string) (whenlua.Paths, string, error) {
	p, err := b.home(name)
	if err != nil {
		return whenlua.Paths{}, "", err
	}
	ticks := filepath.Join(p.Home, "ticks")
	if err := writeJob(p, "tick.lua", fmt.Sprintf("every(\"second\", %q, {name=\"tick\"})\n", tickScript(ticks))); err != nil {
		return whenlua.Paths{}, "", err
	}
	return p, ticks, nil
}

// cpuTimes reads the CPU time each daemon has used so far.
func cpuTimes(ds []*daemon) ([]time.Duration, error) {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		var err error
		if out[i], err = cpuTime(d.pid); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// over counts the durations longer than limit.
func over(ds []time.Duration, limit time.Duration) int {
	n := 0
	for _, d := range ds {
		if d > limit {
			n++
		}
	}
	return n
}

// timerTicks starts a goroutine that, at each half second until end, runs
// the tick script with /bin/sh -c (a timer in this process and a process
// start, what any scheduler pays) and returns a function that waits for it
// and returns the latenesses. The half seconds keep it clear of the
// daemon's whole-second runs.
func timerTicks(ctx context.Context, file string, end time.Time) func() ([]time.Duration, error) {
	type result struct {
		late []time.Duration
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var targets []time.Time
		for {
			target := time.Now().Truncate(time.Second).Add(500 * time.Millisecond)
			if !target.After(time.Now()) {
				target = target.Add(time.Second)
			}
			if !target.Before(end) || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Until(target))
			if err := exec.Command("/bin/sh", "-c", tickScript(file)).Run(); err != nil {
				done <- result{err: err}
				return
			}
			targets = append(targets, target)
		}
		stamps, err := readStamps(file)
		if err != nil {
			done <- result{err: err}
			return
		}
		if len(stamps) != len(targets) {
			done <- result{err: fmt.Errorf("%d baseline ticks recorded, %d run", len(stamps), len(targets))}
			return
		}
		late := make([]time.Duration, len(stamps))
		for i, s := range stamps {
			late[i] = s.Sub(targets[i])
		}
		done <- result{late: late}
	}()
	return func() ([]time.Duration, error) {
		r := <-done
		return r.late, r.err
	}
}

// daemonTicks returns the lateness of each run of the every-second job that
// ran in [start, end), measured from its whole second, and the number of
// whole seconds in the window.
func daemonTicks(file string, start, end time.Time) (late []time.Duration, expected int, err error) {
	stamps, err := readStamps(file)
	if err != nil {
		return nil, 0, err
	}
	for sec := start.Truncate(time.Second).Add(time.Second); sec.Before(end); sec = sec.Add(time.Second) {
		expected++
	}
	for _, s := range stamps {
		if s.Before(start) || !s.Before(end) {
			continue
		}
		late = append(late, s.Sub(s.Truncate(time.Second)))
	}
	return late, expected, nil
}

// readStamps reads the nanosecond timestamps the tick script appended.
func readStamps(file string) ([]time.Time, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ns, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a time in nanoseconds", file, sc.Text())
		}
		out = append(out, time.Unix(0, ns))
	}
	return out, sc.Err()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
