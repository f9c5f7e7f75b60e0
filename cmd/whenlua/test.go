package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// testCommand is `whenlua test [--type T] NAME=VALUE ...`: it prints the
// jobs a set would run, one per line, and changes nothing.
func testCommand(e *env) *cli.Command {
	return assignCommand(e, "test", "print the jobs a set would run; changes nothing", whenlua.ModeTest,
		func(c *cli.Context, resp whenlua.SetResponse) error {
			for _, name := range resp.Triggered {
				fmt.Fprintln(e.stdout, name)
			}
			return nil
		})
}
