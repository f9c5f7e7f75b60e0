package main

import (
	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// tailCommand is `whenlua tail SERIAL`: the run's output from the start,
// followed until the run ends (a finished run's stored output at once).
func tailCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "tail",
		Usage:     "follow a running job's output until it ends",
		ArgsUsage: "SERIAL",
		Action: serialAction(e, func(c *cli.Context, cl *whenlua.Client, serial uint64) error {
			return cl.Tail(c.Context, serial, e.stdout)
		}),
	}
}
