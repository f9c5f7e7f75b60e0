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
			"of its pid, and \"-\" for its directory; --json gives each run's state. In a cluster\n" +
			"the directory is NODE:DIR, on the node that runs it, and a run no node started yet\n" +
			"shows \"starting\".",
		Flags: []cli.Flag{jsonFlag()},
		Action: listAction(e, func(cl *whenlua.Client, ctx context.Context) ([]whenlua.Run, error) {
			runs, err := cl.Jobs(ctx)
			return orEmpty(runs), err
		}, func(w io.Writer, runs []whenlua.Run) {
			for _, r := range runs {
				switch {
				case r.State == whenlua.RunQueued:
					fmt.Fprintf(w, "%d\t%s\t%s\tqueued\t-\n", r.Serial, r.Job, fmtTime(r.Start))
				case r.PID == 0:
					// In a cluster, offered to the nodes and not started yet.
					fmt.Fprintf(w, "%d\t%s\t%s\tstarting\t-\n", r.Serial, r.Job, fmtTime(r.Start))
				case r.Node != "":
					fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s:%s\n", r.Serial, r.Job, fmtTime(r.Start), r.PID, r.Node, r.Dir)
				default:
					fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\n", r.Serial, r.Job, fmtTime(r.Start), r.PID, r.Dir)
				}
			}
		}),
	}
}
