package main

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// logCommand is `whenlua log [NAME] [-n N]`: finished runs, newest first:
// serial, name, start, duration, exit code (or what happened instead), and
// for a catch-up run the scheduled time it stands for, for a retry its
// attempt number and the serial of the first attempt, in a cluster the
// node that ran it, and why a run was refused, failed, was lost or cancelled.
func logCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "log",
		Usage:     "print finished runs, newest first: serial, name, start, duration, code (and what a catch-up run stands for, a retry's attempt, a cluster's node, why it did not end by itself)",
		ArgsUsage: "[NAME]",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Value: 20, Usage: "print at most `N` runs (0: all kept)"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usageErrorf("usage: %s [NAME] [-n N]", c.Command.HelpName)
			}
			n, err := countArg(c)
			if err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			runs, err := cl.Log(c.Context, c.Args().First(), n)
			if err != nil {
				return err
			}
			runs = orEmpty(runs)
			return e.printJSONOr(c, runs, func() {
				for _, r := range runs {
					fmt.Fprintln(e.stdout, logLine(r))
				}
			})
		},
	}
}

// outcome is a run's exit code, or what happened instead.
func outcome(r whenlua.Run) string {
	switch {
	case r.State != whenlua.RunDone:
		return string(r.State)
	case r.Signal != "":
		return "signal " + r.Signal
	}
	return fmt.Sprint(r.Code)
}

// logLine is one run as log prints it.
func logLine(r whenlua.Run) string {
	took := fmtDuration(r.Duration())
	if r.State == whenlua.RunCancelled {
		took = "-" // cancelled in the queue: it never ran
	}
	line := fmt.Sprintf("%d\t%s\t%s\t%s\t%s", r.Serial, r.Job, fmtTime(r.Start), took, outcome(r))
	if r.CatchUp {
		line += "\tcatch-up for " + r.Scheduled.Format(time.RFC3339)
	}
	if r.Attempt > 1 {
		line += fmt.Sprintf("\tattempt %d of the run %d", r.Attempt, r.FirstSerial)
	}
	if r.Node != "" {
		line += "\ton " + r.Node
	}
	if r.Error != "" {
		// Why it was refused, failed, lost or cancelled, on one line.
		line += "\t" + strings.Map(func(c rune) rune {
			if unicode.IsControl(c) {
				return ' '
			}
			return c
		}, r.Error)
	}
	return line
}
