package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host"
	"github.com/whenlua/whenlua/persist"
)

// simulateCommand is `whenlua simulate FILE [--since T] [--until T]
// [--store DIR] [--json]`: the stored history of every variable replayed
// through FILE in a throwaway engine (host.Simulate), read through the
// daemon or from a copy of its store.
func simulateCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "simulate",
		Usage:     "replay the stored variable history through a job file; print when its jobs would have been due; runs nothing",
		ArgsUsage: "FILE",
		Description: "Every kept version of every variable is replayed, in the order it was\n" +
			"stored and at its recorded time, through FILE's when-jobs, in an engine of\n" +
			"this command's own that runs no process and writes nothing: the sets of one\n" +
			"commit as the daemon applied and evaluated them, whispers without\n" +
			"evaluating, hold and time-dependent conditions on the recorded times. One\n" +
			"line each time a job would have been due, in the order the daemon would have\n" +
			"started them: time, job, \"would be due\", what made it due (the origin of\n" +
			"the set: cli, whisper, job NAME post...; hold; or load), and the values of\n" +
			"the variables its condition reads. Then the scheduled times of every- and\n" +
			"cron-jobs in the window, at most --max-times per job (a line says when the\n" +
			"listing stopped). On standard error, a line for each job whose condition\n" +
			"raised an error in the window (such an evaluation is never due): how many\n" +
			"times, and the first error; --json has them as \"errors\".\n\n" +
			"Nothing of FILE acts: pre functions are not called (a job that has one is\n" +
			"listed as \"would be due (pre not consulted)\"), post functions neither, and\n" +
			"sets made by FILE's own code are dropped. Sets that hooks made in the\n" +
			"daemon are in the history and are replayed as they were: a chain of jobs\n" +
			"is replayed from the record, not recomputed. FILE is loaded once, before\n" +
			"the first version, with no variable set: reloaded() is true at that first\n" +
			"evaluation only (the daemon's restarts and reloads are not in the history).\n" +
			"Versions stored by an older whenlua, which kept no set marks, are replayed\n" +
			"first, one set each, in the order of their times.\n\n" +
			"--since and --until take an RFC 3339 time, a date (YYYY-MM-DD, local\n" +
			"midnight) or a duration back from now (90m, 36h, 30d). Versions before\n" +
			"--since are replayed without being reported, so that the state at --since\n" +
			"is the one the history built; versions after --until are left out.\n\n" +
			"The history is read through the daemon (streamed) or, with --store DIR,\n" +
			"from a store opened read-only: a daemon keeps its store to itself, so copy\n" +
			"its state directory first (cp -r ~/.local/state/whenlua /tmp/wl) and pass\n" +
			"the copy, or stop the daemon. A copy taken while the daemon ran is\n" +
			"recovered in a temporary copy of its own: DIR is never written. The\n" +
			"history is replayed from memory, as long as retention keeps it\n" +
			"(--history-keep versions per variable). FILE requires modules from the\n" +
			"lib/ directory next to it, or else from the jobs directory's.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "since", Usage: "report from `TIME` on (earlier history is replayed silently)"},
			&cli.StringFlag{Name: "until", Usage: "replay up to `TIME` (default: now)"},
			&cli.StringFlag{Name: "store", Usage: "read the history from the store in `DIR` (a copy of the state directory, or its db/), not through the daemon"},
			&cli.IntFlag{Name: "max-times", Value: host.DefaultSimulateMaxTimes, Usage: "list at most `N` scheduled times per every- or cron-job"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "FILE [--since TIME] [--until TIME] [--store DIR]"); err != nil {
				return err
			}
			file := c.Args().First()
			now := time.Now()
			since, err := parseWhen(c.String("since"), now)
			if err != nil {
				return usageErrorf("--since: %v", err)
			}
			until, err := parseWhen(c.String("until"), now)
			if err != nil {
				return usageErrorf("--until: %v", err)
			}
			if !since.IsZero() && !until.IsZero() && until.Before(since) {
				return usageErrorf("--until is before --since")
			}
			if c.Int("max-times") <= 0 {
				return usageErrorf("--max-times must be positive")
			}
			if _, err := os.Stat(file); err != nil {
				return err
			}
			var hs whenlua.HistoryScanner
			if dir := c.String("store"); dir != "" {
				s, err := openStoreCopy(dir)
				if err != nil {
					return err
				}
				defer s.Close()
				hs = s
			} else {
				cl, err := e.Client()
				if err != nil {
					return err
				}
				hs = cl
			}
			var hist []whenlua.VarVersion
			err = hs.ScanHistory(c.Context, func(v whenlua.VarVersion) error {
				if until.IsZero() || !v.Time.After(until) {
					hist = append(hist, v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			lib := filepath.Join(filepath.Dir(file), "lib")
			if _, err := os.Stat(lib); err != nil {
				if p, err := e.Paths(); err == nil {
					lib = p.LibDir // a copy of a job file, outside the jobs directory
				}
			}
			sim, err := host.Simulate(c.Context, host.SimulateOptions{
				File:     file,
				LibDir:   lib,
				Since:    since,
				Until:    until,
				MaxTimes: c.Int("max-times"),
				Now:      func() time.Time { return now },
			}, hist)
			if err != nil {
				return err
			}
			return e.printJSONOr(c, sim, func() { printSimulation(e.stdout, e.stderr, sim) })
		},
	}
}

// printSimulation writes a simulation as text: one line per due, then the
// scheduled times; to errw, a line per job whose condition raised errors
// in the window, so that "never due" and "never evaluated without an
// error" differ.
func printSimulation(w, errw io.Writer, sim *host.Simulation) {
	defer func() {
		for _, e := range sim.Errors {
			fmt.Fprintf(errw, "%s: %d condition errors, the first at %s: %s\n", e.Job, e.Count, fmtTime(e.First), e.Error)
		}
	}()
	for _, d := range sim.Due {
		what := "would be due"
		if d.PreNotConsulted {
			what += " (pre not consulted)"
		}
		names := make([]string, 0, len(d.Values))
		for n := range d.Values {
			names = append(names, n)
		}
		slices.Sort(names)
		vals := make([]string, 0, len(names))
		for _, n := range names {
			vals = append(vals, n+"="+shown(d.Values[n]))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", fmtTime(d.Time), d.Job, what, d.By, strings.Join(vals, " "))
	}
	for _, s := range sim.Scheduled {
		for _, t := range s.Times {
			fmt.Fprintf(w, "%s\t%s\tscheduled\t%s %s\n", fmtTime(t), s.Job, s.Kind, s.Spec)
		}
		if s.More {
			fmt.Fprintf(w, "%s: listing stopped after %d times; more follow until %s\n", s.Job, len(s.Times), fmtTime(sim.To))
		}
	}
}

// openStoreCopy opens the store in dir (a state directory or its db/)
// read-only. A store badger must recover first (not closed cleanly) is
// copied to a temporary directory and recovered there: dir is never
// written.
func openStoreCopy(dir string) (*storeCopy, error) {
	db := dir
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		if fi, err := os.Stat(filepath.Join(dir, "db")); err == nil && fi.IsDir() {
			db = filepath.Join(dir, "db")
		}
	}
	if _, err := os.Stat(filepath.Join(db, "MANIFEST")); err != nil {
		return nil, fmt.Errorf("%s: no whenlua store here (a state directory holds one in db/)", dir)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := persist.Open(persist.Options{Dir: db, ReadOnly: true, Logger: quiet})
	switch {
	case errors.Is(err, persist.ErrLocked):
		return nil, fmt.Errorf("the store in %s is in use (a daemon runs on it?): copy the state directory and pass the copy, or simulate without --store to read through the daemon", db)
	case errors.Is(err, persist.ErrNeedsRecovery):
		// A copy taken while the daemon ran, or a store left by a crash:
		// badger recovers it only by writing, so it does so on a copy
		// of ours, which goes once the store is closed.
		return openRecoveredCopy(db, quiet)
	case err != nil:
		return nil, err
	}
	return &storeCopy{Store: s}, nil
}

// storeCopy is a store opened for simulate; Close also removes the
// temporary copy it was recovered in, if any.
type storeCopy struct {
	*persist.Store
	tmp string
}

func (s *storeCopy) Close() error {
	err := s.Store.Close()
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
	return err
}

// openRecoveredCopy copies the files of the database in db to a temporary
// directory and opens that copy, where badger may recover what it must.
func openRecoveredCopy(db string, log *slog.Logger) (*storeCopy, error) {
	tmp, err := os.MkdirTemp("", "whenlua-simulate-")
	if err != nil {
		return nil, err
	}
	if err := copyFiles(db, tmp); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("copy the store to recover it: %w", err)
	}
	s, err := persist.Open(persist.Options{Dir: tmp, MaintainEvery: -1, Logger: log})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &storeCopy{Store: s, tmp: tmp}, nil
}

// copyFiles copies the regular files directly in src (a badger directory
// is flat) into dst.
func copyFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, de := range entries {
		if !de.Type().IsRegular() || de.Name() == "LOCK" {
			continue
		}
		if err := copyFile(filepath.Join(src, de.Name()), filepath.Join(dst, de.Name()), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src to dst, a new file with the permissions perm.
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// parseWhen reads a --since or --until TIME: RFC 3339, a date (local
// midnight) or a duration back from now ("30d", "36h"). "" gives the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a date (YYYY-MM-DD) or a duration back from now (30d, 36h)", s)
}
