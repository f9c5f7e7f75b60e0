package main

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// varsCommand is `whenlua vars`: NAME=VALUE lines sorted by name.
func varsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "vars",
		Usage: "print every variable as NAME=VALUE, sorted",
		Flags: []cli.Flag{jsonFlag()},
		Action: listAction(e, (*whenlua.Client).Vars, func(w io.Writer, vars map[string]whenlua.Value) {
			for _, n := range slices.Sorted(maps.Keys(vars)) {
				fmt.Fprintf(w, "%s=%s\n", n, vars[n].String())
			}
		}),
	}
}
