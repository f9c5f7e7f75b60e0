package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// jobsCommand is `whenlua jobs`: the running runs, one per line: serial,
// name, start, pid, directory.
func jobsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "jobs",
		Usage: "print the running jobs: serial, name, start, pid, directory",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			runs, err := cl.Jobs(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if runs == nil {
					runs = []whenlua.Run{}
				}
				return e.printJSON(runs)
			}
			for _, r := range runs {
				fmt.Fprintf(e.stdout, "%d\t%s\t%s\t%d\t%s\n", r.Serial, r.Job, fmtTime(r.Start), r.PID, r.Dir)
			}
			return nil
		},
	}
}
