// Command whenlua is the per-user job scheduler: the daemon and its client.
//
// Every command but `daemon run` talks to the daemon over its unix socket.
// Errors go to stderr, one line each; the exit status is 0 on success, 1 on
// failure and 2 on a usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: stdout, stderr: stderr}
	app := newApp(e)
	err := app.RunContext(ctx, completionArgs(app, args))
	return e.report(err)
}

// newApp builds the command tree; e is filled from the global flags.
func newApp(e *env) *cli.App {
	app := &cli.App{
		Name:      "whenlua",
		Usage:     "run shell jobs periodically or when conditions over variables become true",
		Version:   whenlua.BuildVersion,
		Writer:    e.stdout,
		ErrWriter: e.stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "home", Usage: "put jobs, state and socket under `DIR` (default $WHENLUA_HOME, else the XDG directories)"},
		},
		HideHelpCommand: false,
		Before: func(c *cli.Context) error {
			e.homeFlag = c.String("home")
			return nil
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("unknown command %q (see: whenlua help)", c.Args().First())
			}
			_ = cli.ShowAppHelp(c)
			return usageErrorf("no command given")
		},
		// Errors are printed once, by report; nothing here may exit.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			daemonCommand(e),
			setCommand(e),
			whisperCommand(e),
			testCommand(e),
			unsetCommand(e),
			getCommand(e),
			varsCommand(e),
			historyCommand(e),
			namesCommand(e),
			jobsCommand(e),
			startCommand(e),
			cancelCommand(e),
			tailCommand(e),
			logCommand(e),
			outputCommand(e),
			statusCommand(e),
			nextCommand(e),
			whyCommand(e),
			reportCommand(e),
			reloadCommand(e),
			checkCommand(e),
			editCommand(e),
			replCommand(e),
			simulateCommand(e),
			completionCommand(e),
			docsCommand(e),
		},
	}
	onUsage := func(_ *cli.Context, err error, _ bool) error { return &exitError{code: 2, err: err} }
	app.OnUsageError = onUsage
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.OnUsageError = onUsage
			if len(c.Subcommands) == 0 {
				// Only -h/--help asks a command for help: urfave/cli would
				// otherwise give a leaf command a "help" (alias "h")
				// subcommand, and `get h` or `get -- help` would print help
				// rather than read the variable.
				c.HideHelpCommand = true
			}
			if len(c.Subcommands) > 0 && c.Action == nil {
				c.Action = func(cc *cli.Context) error {
					if cc.NArg() > 0 {
						return usageErrorf("unknown command %q for %s", cc.Args().First(), cc.Command.FullName())
					}
					_ = cli.ShowSubcommandHelp(cc)
					return usageErrorf("%s needs a subcommand", cc.Command.FullName())
				}
			}
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	installCompletion(app, e)
	return app
}

// exitError carries an exit status; a silent one prints nothing.
type exitError struct {
	code   int
	err    error
	silent bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage error: exit status 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// silentExit ends with status code and prints nothing.
func silentExit(code int) error { return &exitError{code: code, silent: true} }

// report prints err on one line and returns the exit status for it.
func (e *env) report(err error) int {
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.silent {
			return code
		}
	}
	var ce cli.ExitCoder
	if errors.As(err, &ce) && ee == nil {
		code = ce.ExitCode()
		if code == 3 { // urfave's "No help topic"
			code = 2
		}
	}
	msg := err.Error()
	switch {
	case errors.Is(err, whenlua.ErrNoDaemon):
		msg = e.noDaemonMessage()
	case errors.Is(err, context.Canceled):
		return 130
	}
	fmt.Fprintf(e.stderr, "whenlua: %s\n", oneLine(msg))
	return code
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
