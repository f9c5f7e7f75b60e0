package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// reloadCommand is `whenlua reload`: rescan the jobs directory now. It
// prints the job files' state and exits 1 when a file failed to load (its
// previous version, if any, stays active).
func reloadCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "reload",
		Usage: "rescan the jobs directory now; exit 1 if a file fails to load",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			st, err := cl.Reload(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := e.printJSON(st); err != nil {
					return err
				}
			}
			failed := 0
			for _, f := range st.Files {
				if f.Error != "" {
					failed++
					fmt.Fprintf(e.stderr, "whenlua: %s\n", oneLine(f.Error))
				} else if !c.Bool("json") {
					fmt.Fprintf(e.stdout, "%s\tgeneration %d\t%s\n", f.Path, f.Generation, plural(f.Jobs, "job"))
				}
			}
			if failed > 0 {
				return silentExit(1)
			}
			return nil
		},
	}
}
