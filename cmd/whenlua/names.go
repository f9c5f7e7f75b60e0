package main

import (
	"cmp"
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// namesCommand is `whenlua names`: every loaded job, one per line: name,
// kind, condition, period or cron expression, file:line, and the zone its
// times are read in ("-" for a when-job).
func namesCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "names",
		Usage: "print every loaded job: name, kind, condition, period or cron expression, file:line, zone",
		Flags: []cli.Flag{jsonFlag()},
		Action: listAction(e, func(cl *whenlua.Client, ctx context.Context) ([]whenlua.JobInfo, error) {
			jobs, err := cl.Names(ctx)
			return orEmpty(jobs), err
		}, func(w io.Writer, jobs []whenlua.JobInfo) {
			for _, j := range jobs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s:%d\t%s\n", j.Name, j.Kind, oneLine(j.Spec()), j.File, j.Line, cmp.Or(j.Zone, "-"))
			}
		}),
	}
}
