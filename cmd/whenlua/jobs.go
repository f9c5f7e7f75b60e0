package main

import (
	"context"
	"fmt"
	"io"

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
		Action: listAction(e, func(cl *whenlua.Client, ctx context.Context) ([]whenlua.Run, error) {
			runs, err := cl.Jobs(ctx)
			if runs == nil {
				runs = []whenlua.Run{}
			}
			return runs, err
		}, func(w io.Writer, runs []whenlua.Run) {
			for _, r := range runs {
				fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\n", r.Serial, r.Job, fmtTime(r.Start), r.PID, r.Dir)
			}
		}),
	}
}
