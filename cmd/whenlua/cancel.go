package main

import (
	"github.com/urfave/cli/v2"
)

// cancelCommand is `whenlua cancel SERIAL`: SIGTERM to the run's process
// group, SIGKILL after the grace period.
func cancelCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "stop a running job",
		ArgsUsage: "SERIAL",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "SERIAL"); err != nil {
				return err
			}
			serial, err := parseSerial(c.Args().First())
			if err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			return cl.Cancel(c.Context, serial)
		},
	}
}
