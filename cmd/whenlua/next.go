package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// nextCommand is `whenlua next --cron EXPR [--tz Z] [--from TIME] [-n N]`:
// the next times of a cron expression, computed here without a daemon,
// one RFC 3339 time with the zone's offset per line.
func nextCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "next",
		Usage:     "print the next times of a cron expression, as RFC 3339 with the zone's offset",
		ArgsUsage: " ",
		Description: "With --cron, the expression is evaluated here, without a daemon, as the\n" +
			"daemon would schedule it: in the zone of --tz (default: the local zone),\n" +
			"from --from (default: now), with DST handled as ISC cron does. So\n" +
			"`whenlua next --cron \"30 2 * * *\" --tz Europe/Berlin --from 2026-03-28T00:00:00+01:00`\n" +
			"shows the run on the morning the clocks skip 02:30 moved to 03:00.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cron", Usage: "evaluate the cron `EXPR` (5 fields or @daily...)"},
			&cli.StringFlag{Name: "tz", Usage: "read the expression in the IANA `ZONE` (default: the local zone)"},
			&cli.StringFlag{Name: "from", Usage: "start after `TIME` (RFC 3339; default: now)"},
			&cli.IntFlag{Name: "n", Value: 5, Usage: "print `N` times"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if !c.IsSet("cron") {
				return usageErrorf("usage: %s --cron EXPR [--tz ZONE] [--from TIME] [-n N]", c.Command.HelpName)
			}
			if c.Int("n") < 1 {
				return usageErrorf("-n must be at least 1")
			}
			loc, err := whenlua.LoadZone(c.String("tz"))
			if err != nil {
				return err
			}
			cr, err := whenlua.ParseCron(c.String("cron"), loc)
			if err != nil {
				return err
			}
			from := time.Now()
			if s := c.String("from"); s != "" {
				if from, err = time.Parse(time.RFC3339, s); err != nil {
					return usageErrorf("--from %q: not an RFC 3339 time (e.g. 2026-03-28T00:00:00+01:00)", s)
				}
			}
			times := nextTimes(cr.Next, from, c.Int("n"))
			if c.Bool("json") {
				return e.printJSON(nextJSON{Cron: cr.String(), Zone: whenlua.ZoneName(loc), Times: times})
			}
			for _, t := range times {
				fmt.Fprintln(e.stdout, t)
			}
			return nil
		},
	}
}

// nextJSON is `next --cron --json`'s output.
type nextJSON struct {
	Cron  string   `json:"cron"`
	Zone  string   `json:"zone"`
	Times []string `json:"times"`
}

// nextTimes lists up to n times of next after from, formatted as RFC 3339
// in their own zone; the list ends early where next has no more.
func nextTimes(next func(time.Time) time.Time, from time.Time, n int) []string {
	out := []string{}
	for range n {
		from = next(from)
		if from.IsZero() {
			break
		}
		out = append(out, from.Format(time.RFC3339))
	}
	return out
}
