package main

import (
	"fmt"

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
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			jobs, err := cl.Names(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if jobs == nil {
					jobs = []whenlua.JobInfo{}
				}
				return e.printJSON(jobs)
			}
			for _, j := range jobs {
				spec := j.Cond
				if j.Kind == "every" {
					spec = j.Period
				}
				fmt.Fprintf(e.stdout, "%s\t%s\t%s\t%s:%d\n", j.Name, j.Kind, oneLine(spec), j.File, j.Line)
			}
			return nil
		},
	}
}
