package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// getCommand is `whenlua get NAME`: the bare value; an unset variable
// prints nothing and exits 1.
func getCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "print a variable's value (exit 1 when unset)",
		ArgsUsage: "NAME",
		Flags:     []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "NAME"); err != nil {
				return err
			}
			name := c.Args().First()
			// JOBSERIAL is reserved for the daemon, which reads it as the last serial.
			if err := whenlua.ValidateName(name); err != nil && name != "JOBSERIAL" {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			v, err := cl.Get(c.Context, name)
			if err != nil {
				return err
			}
			if v.IsNil() {
				return silentExit(1)
			}
			return e.printJSONOr(c, v, func() { fmt.Fprintln(e.stdout, v.String()) })
		},
	}
}
