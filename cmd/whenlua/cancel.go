package main

import (
	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// cancelCommand is `whenlua cancel SERIAL`: SIGTERM to the run's
// processes, SIGKILL after the grace period; a queued run is dropped from
// the queue and recorded as cancelled.
func cancelCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "stop a running job, or drop a queued one",
		ArgsUsage: "SERIAL",
		Action: serialAction(e, func(c *cli.Context, cl *whenlua.Client, serial uint64) error {
			return cl.Cancel(c.Context, serial)
		}),
	}
}
