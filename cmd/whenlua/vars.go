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
		Description: "One line per variable. A value holding a newline or another character\n" +
			"that does not print (a tab, a control or formatting character), bytes that\n" +
			"are not UTF-8, or starting with a double quote, is written double-quoted\n" +
			"with backslash escapes (\"a\\nb\"), so that each line is one variable; get\n" +
			"prints a value as it is, and --json is exact.",
		Flags: []cli.Flag{jsonFlag()},
		Action: listAction(e, (*whenlua.Client).Vars, func(w io.Writer, vars map[string]whenlua.Value) {
			for _, n := range slices.Sorted(maps.Keys(vars)) {
				fmt.Fprintf(w, "%s=%s\n", n, vars[n].LineString())
			}
		}),
	}
}
