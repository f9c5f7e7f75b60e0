package main

import (
	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// unsetCommand is `whenlua unset NAME...`: one atomic set of the names to
// nil; it triggers when-jobs as set does.
func unsetCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "unset",
		Usage:     "unset variables atomically; triggers when-jobs",
		ArgsUsage: "NAME...",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf("usage: %s NAME...", c.Command.HelpName)
			}
			var as []whenlua.Assignment
			for _, name := range c.Args().Slice() {
				if err := whenlua.ValidateName(name); err != nil {
					return err
				}
				as = append(as, whenlua.Assignment{Name: name, Value: whenlua.Nil})
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			_, err = cl.Set(c.Context, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: as})
			return err
		},
	}
}
