package main

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// namesCommand is `whenlua names`: every loaded job, one per line: name,
// kind, condition or period, file:line.
func namesCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "names",
		Usage: "print every loaded job: name, kind, condition or period, file:line",
		Flags: []cli.Flag{jsonFlag()},
		Action: listAction(e, func(cl *whenlua.Client, ctx context.Context) ([]whenlua.JobInfo, error) {
			jobs, err := cl.Names(ctx)
			if jobs == nil {
				jobs = []whenlua.JobInfo{}
			}
			return jobs, err
		}, func(w io.Writer, jobs []whenlua.JobInfo) {
			for _, j := range jobs {
				spec := j.Cond
				if j.Kind == "every" {
					spec = j.Period
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s:%d\n", j.Name, j.Kind, oneLine(spec), j.File, j.Line)
			}
		}),
	}
}
