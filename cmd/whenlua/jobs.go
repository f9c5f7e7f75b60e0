package main

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// jobsCommand is `whenlua jobs`: the running and queued runs, one per
// line: serial, name, start, pid, directory; a queued run has "queued" in
// place of the pid and no directory yet.
func jobsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "jobs",
		Usage: "print the running jobs: serial, name, start, pid, directory",
		Description: "A run waiting for a free slot (daemon run --max-runs) shows \"queued\" in place\n" +
			"of its pid, and \"-\" for its directory; --json gives each run's state.",
		Flags: []cli.Flag{jsonFlag()},
		Action: listAction(e, func(cl *whenlua.Client, ctx context.Context) ([]whenlua.Run, error) {
			runs, err := cl.Jobs(ctx)
			return orEmpty(runs), err
		}, func(w io.Writer, runs []whenlua.Run) {
			for _, r := range runs {
				if r.State == whenlua.RunQueued {
					fmt.Fprintf(w, "%d\t%s\t%s\tqueued\t-\n", r.Serial, r.Job, fmtTime(r.Start))
					continue
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\n", r.Serial, r.Job, fmtTime(r.Start), r.PID, r.Dir)
			}
		}),
	}
}
