package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// env is what every command shares: the global flags, the output streams,
// the resolved paths and the client, made on first use.
type env struct {
	stdout, stderr io.Writer
	homeFlag       string

	paths    whenlua.Paths
	resolved bool
	client   *whenlua.Client
}

// Paths resolves the home from --home, $WHENLUA_HOME or XDG.
func (e *env) Paths() (whenlua.Paths, error) {
	if e.resolved {
		return e.paths, nil
	}
	p, err := whenlua.ResolvePaths(e.homeFlag)
	if err != nil {
		return whenlua.Paths{}, err
	}
	e.paths, e.resolved = p, true
	return p, nil
}

// Client returns a client of the home's daemon.
func (e *env) Client() (*whenlua.Client, error) {
	if e.client != nil {
		return e.client, nil
	}
	p, err := e.Paths()
	if err != nil {
		return nil, err
	}
	e.client = whenlua.Dial(p.Socket)
	return e.client, nil
}

// homeArgs are the global arguments that select this home in a command
// printed for the user or run as a child.
func (e *env) homeArgs() []string {
	if e.homeFlag == "" {
		return nil
	}
	p, err := e.Paths()
	if err != nil || p.Home == "" {
		return []string{"--home", e.homeFlag}
	}
	return []string{"--home", p.Home}
}

func (e *env) noDaemonMessage() string {
	where := "this home"
	if p, err := e.Paths(); err == nil {
		where = p.Where()
	}
	cmd := "whenlua daemon start"
	if h := e.homeArgs(); h != nil {
		cmd = "whenlua --home " + shellQuote(h[1]) + " daemon start"
	}
	return fmt.Sprintf("no daemon is running for %s; start one with: %s", where, cmd)
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"$\\`*?[]{}()<>|&;~#!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// jsonFlag returns the --json flag of listing commands.
func jsonFlag() cli.Flag { return &cli.BoolFlag{Name: "json", Usage: "print JSON instead of text"} }

// printJSON writes v as indented JSON.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printJSONOr prints v as indented JSON with --json, else calls text.
func (e *env) printJSONOr(c *cli.Context, v any, text func()) error {
	if c.Bool("json") {
		return e.printJSON(v)
	}
	text()
	return nil
}

// orEmpty makes a nil list empty, so that --json prints it as [] rather
// than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// countArg is the value of a listing's -n flag (0: all kept); a negative
// one is a usage error. It is checked in the command's Action, after its
// arguments, rather than by the flag's own Action, which urfave/cli runs
// before the command's and which would then report -n first.
func countArg(c *cli.Context) (int, error) {
	n := c.Int("n")
	if n < 0 {
		return 0, usageErrorf("-n must not be negative")
	}
	return n, nil
}

// noArgs refuses positional arguments.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf("%s takes no arguments, got %q", c.Command.HelpName, c.Args().First())
	}
	return nil
}

// exactArgs requires n positional arguments named by what.
func exactArgs(c *cli.Context, n int, what string) error {
	if c.NArg() != n {
		return usageErrorf("usage: %s %s", c.Command.HelpName, what)
	}
	return nil
}

// parseSerial parses a run serial argument.
func parseSerial(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, usageErrorf("%q is not a run serial (a positive number)", s)
	}
	return n, nil
}

// timeFmt is how times are printed: local time, to the millisecond.
const timeFmt = "2006-01-02 15:04:05.000"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(timeFmt)
}

// fmtDuration rounds d for display.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// listAction is the Action of a command that takes no arguments, asks the
// daemon (fetch is a Client method expression or alike) for one value and
// prints it: as JSON with --json, else as text.
func listAction[T any](e *env, fetch func(*whenlua.Client, context.Context) (T, error), text func(io.Writer, T)) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := noArgs(c); err != nil {
			return err
		}
		cl, err := e.Client()
		if err != nil {
			return err
		}
		v, err := fetch(cl, c.Context)
		if err != nil {
			return err
		}
		return e.printJSONOr(c, v, func() { text(e.stdout, v) })
	}
}

// serialAction is the Action of a command whose one argument is a run's
// SERIAL: it parses it and hands it, with a client, to do.
func serialAction(e *env, do func(c *cli.Context, cl *whenlua.Client, serial uint64) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := exactArgs(c, 1, "SERIAL"); err != nil {
			return err
		}
		serial, err := parseSerial(c.Args().First())
		if err != nil {
			return err
		}
		cl, err := e.Client()
		if err != nil {
			return err
		}
		return do(c, cl, serial)
	}
}

// plural is "1 job", "2 jobs".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
