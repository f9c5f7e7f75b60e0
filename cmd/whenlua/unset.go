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
			req := whenlua.SetRequest{Mode: whenlua.ModeSet}
			for _, name := range c.Args().Slice() {
				req.Assignments = append(req.Assignments, whenlua.Assignment{Name: name, Value: whenlua.Nil})
			}
			if err := req.Validate(); err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			_, err = cl.Set(c.Context, req)
			return err
		},
	}
}
