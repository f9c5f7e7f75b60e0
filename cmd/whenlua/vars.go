package main

import (
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"
)

// varsCommand is `whenlua vars`: NAME=VALUE lines sorted by name.
func varsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "vars",
		Usage: "print every variable as NAME=VALUE, sorted",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			vars, err := cl.Vars(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.printJSON(vars)
			}
			names := make([]string, 0, len(vars))
			for n := range vars {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				fmt.Fprintf(e.stdout, "%s=%s\n", n, vars[n].String())
			}
			return nil
		},
	}
}
