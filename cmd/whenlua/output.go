package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// outputCommand is `whenlua output SERIAL`: the stored output of a
// finished run (its head and tail when it was long).
func outputCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "output",
		Usage:     "print the stored output of a finished run",
		ArgsUsage: "SERIAL",
		Action: serialAction(e, func(c *cli.Context, cl *whenlua.Client, serial uint64) error {
			r, err := cl.Run(c.Context, serial)
			if err != nil {
				return err
			}
			if r.State == whenlua.RunRunning || r.State == whenlua.RunQueued {
				return fmt.Errorf("run %d is still %s; follow it with: whenlua tail %d", serial, r.State, serial)
			}
			_, err = e.stdout.Write(r.Output)
			return err
		}),
	}
}
