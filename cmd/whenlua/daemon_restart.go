package main

import (
	"time"

	"github.com/urfave/cli/v2"
)

// daemonRestartCommand is `whenlua daemon restart`: stop the daemon if it
// runs, start a new one and print its pid.
func daemonRestartCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "restart",
		Usage: "stop the daemon if it runs, then start it and print its pid",
		Flags: append([]cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "give up waiting for the stop after `DURATION`"},
		}, daemonFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if err := checkDaemonFlags(c); err != nil {
				return err
			}
			if _, err := stopDaemon(c.Context, e, c.Duration("timeout")); err != nil {
				return err
			}
			return startAndPrint(c, e)
		},
	}
}
