package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// startCommand is `whenlua start NAME`: run a job now, unconditionally
// (its pre hook still decides). It prints the run's serial; a run that
// was refused or could not start is an error.
func startCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "run a job now and print its serial",
		ArgsUsage: "NAME",
		Flags:     []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "NAME"); err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			r, err := cl.Start(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			if err := e.printJSONOr(c, r, func() { fmt.Fprintln(e.stdout, r.Serial) }); err != nil {
				return err
			}
			switch r.State {
			case whenlua.RunRefused, whenlua.RunFailed:
				msg := fmt.Sprintf("job %s (serial %d) was %s", r.Job, r.Serial, r.State)
				if r.Error != "" {
					msg += ": " + r.Error
				}
				return fmt.Errorf("%s", msg)
			}
			return nil
		},
	}
}
