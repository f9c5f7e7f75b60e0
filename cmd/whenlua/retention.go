package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua/persist"
)

// retentionFlags are the store's retention settings and --recover, taken
// by `daemon run` and passed on by `daemon start` and `daemon restart`.
func retentionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "history-keep", Value: persist.DefaultHistoryKeep, Usage: "keep at most `N` versions of each variable (the newest is always kept)"},
		&cli.DurationFlag{Name: "history-max-age", Usage: "drop versions older than `DURATION`, the newest excepted (0: no age limit)"},
		&cli.IntFlag{Name: "runs-keep", Value: persist.DefaultRunsKeep, Usage: "keep at most `N` run records (running ones are always kept)"},
		&cli.BoolFlag{Name: "recover", Usage: "open a store whose value log is damaged by dropping what cannot be read (each logged)"},
	}
}

// checkRetention checks the retention flags before the daemon gets them.
func checkRetention(c *cli.Context) error {
	switch {
	case c.Int("history-keep") < 1:
		return usageErrorf("--history-keep: want at least 1, not %d", c.Int("history-keep"))
	case c.Duration("history-max-age") < 0:
		return usageErrorf("--history-max-age: want 0 or more, not %s", c.Duration("history-max-age"))
	case c.Int("runs-keep") < 1:
		return usageErrorf("--runs-keep: want at least 1, not %d", c.Int("runs-keep"))
	}
	return nil
}

// retentionOptions are the store's options from the flags (checked by
// checkRetention).
func retentionOptions(c *cli.Context) persist.Options {
	return persist.Options{
		HistoryKeep:   c.Int("history-keep"),
		HistoryMaxAge: c.Duration("history-max-age"),
		RunsKeep:      c.Int("runs-keep"),
		Recover:       c.Bool("recover"),
	}
}

// retentionArgs are the retention flags given to c, for the daemon that
// `daemon start` runs.
func retentionArgs(c *cli.Context) []string {
	var args []string
	for _, name := range []string{"history-keep", "runs-keep"} {
		if c.IsSet(name) {
			args = append(args, "--"+name+"="+strconv.Itoa(c.Int(name)))
		}
	}
	if c.IsSet("history-max-age") {
		args = append(args, fmt.Sprintf("--history-max-age=%s", c.Duration("history-max-age")))
	}
	if c.Bool("recover") {
		args = append(args, "--recover")
	}
	return args
}
