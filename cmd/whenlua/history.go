package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// historyCommand is `whenlua history NAME [-n N]`: the kept versions,
// newest first, one per line: time, origin, value.
func historyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "print a variable's versions, newest first: time, origin, value",
		ArgsUsage: "NAME",
		Description: "One line per version: its time, its origin (cli, whisper, job NAME post,\n" +
			"load of FILE...) and its value, or (unset). Values are written as by vars:\n" +
			"double-quoted with backslash escapes when they hold a character that does\n" +
			"not print or start with a double quote (and a string that reads \"(unset)\"\n" +
			"is quoted). Versions are listed in the order they were set: a clock that\n" +
			"stepped back shows as an earlier time on a newer version.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Usage: "print at most `N` versions (0: all kept)"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "NAME [-n N]"); err != nil {
				return err
			}
			name := c.Args().First()
			if err := whenlua.ValidateName(name); err != nil {
				return err
			}
			n, err := countArg(c)
			if err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			vs, err := cl.History(c.Context, name, n)
			if err != nil {
				return err
			}
			vs = orEmpty(vs)
			return e.printJSONOr(c, vs, func() {
				for _, v := range vs {
					fmt.Fprintf(e.stdout, "%s\t%s\t%s\n", fmtTime(v.Time), v.Origin, shown(v.Value))
				}
			})
		},
	}
}

// shown is a value as history, simulate and the report write it: as vars
// lists it, "(unset)" for nil, and a string that reads (unset) quoted, so
// the two differ.
func shown(v whenlua.Value) string {
	val := v.LineString()
	switch {
	case v.IsNil():
		return "(unset)"
	case val == "(unset)":
		return `"(unset)"`
	}
	return val
}
