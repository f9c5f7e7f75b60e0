package main

import (
	"github.com/urfave/cli/v2"
)

// tailCommand is `whenlua tail SERIAL`: the run's output from the start,
// followed until the run ends (a finished run's stored output at once).
func tailCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "tail",
		Usage:     "follow a running job's output until it ends",
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
			return cl.Tail(c.Context, serial, e.stdout)
		},
	}
}
