package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// completeFlag is the last argument of urfave/cli's completion protocol:
// `whenlua WORDS... --generate-bash-completion` prints the words that may
// come next, one per line. The shell scripts of `whenlua completion` pass
// the word being completed only when it starts with "-", as urfave/cli's
// own scripts do.
const completeFlag = "--generate-bash-completion"

// completingKey is the app's Metadata key holding the words of a
// completion request (without the program name and completeFlag).
const completingKey = "whenlua.completing"

// completionTimeout bounds the question to the daemon while completing: a
// shell must not hang on a tab.
const completionTimeout = 2 * time.Second

// completionArgs is reorderArgs that keeps completeFlag last: the words
// before it are reordered as a command line is, and remembered in the
// app's Metadata for the completers.
func completionArgs(app *cli.App, args []string) []string {
	n := len(args)
	if n < 2 || args[n-1] != completeFlag {
		return reorderArgs(app, args)
	}
	words := slices.Clone(args[1 : n-1])
	if app.Metadata == nil {
		app.Metadata = map[string]any{}
	}
	app.Metadata[completingKey] = words
	return append(reorderArgs(app, args[:n-1]), completeFlag)
}

// completeArg is what a command's positional arguments are.
type completeArg int

const (
	argNone     completeArg = iota
	argVar                  // a variable name
	argVars                 // variable names, any number
	argAssign               // NAME=VALUE pairs: offers "NAME="
	argJob                  // a job name
	argRunning              // the serial of a running run
	argFinished             // the serial of a finished run
)

// completeArgs maps top-level commands to what their arguments are.
var completeArgs = map[string]completeArg{
	"get":     argVar,
	"history": argVar,
	"unset":   argVars,
	"set":     argAssign,
	"whisper": argAssign,
	"test":    argAssign,
	"start":   argJob,
	"log":     argJob,
	"next":    argJob,
	"why":     argJob,
	"cancel":  argRunning,
	"tail":    argRunning,
	"output":  argFinished,
}

// flagValues are the values offered after a flag that takes one.
var flagValues = map[string][]string{
	"type":      {"string", "int", "float", "bool"},
	"t":         {"string", "int", "float", "bool"},
	"log-level": {"debug", "info", "warn", "error"},
	"shell":     {"bash", "zsh", "fish"},
}

// installCompletion turns on shell completion and gives every command of
// app without a BashComplete of its own a completer: subcommand names,
// flags after "-", values of flags, and for the commands of completeArgs
// variable names, job names or run serials asked from the daemon (nothing,
// quietly, when none runs). Call it after every command is registered.
func installCompletion(app *cli.App, e *env) {
	app.EnableBashCompletion = true
	if app.BashComplete == nil {
		app.BashComplete = func(c *cli.Context) {
			completeWords(c, e, app.Commands, app.VisibleFlags(), argNone, false)
		}
	}
	var walk func(cmds []*cli.Command, top bool)
	walk = func(cmds []*cli.Command, top bool) {
		for _, cmd := range cmds {
			cmd := cmd
			kind, group := argNone, len(cmd.Subcommands) > 0
			if top {
				kind = completeArgs[cmd.Name]
			}
			if cmd.BashComplete == nil {
				cmd.BashComplete = func(c *cli.Context) {
					var subs []*cli.Command
					if group { // urfave/cli gives every command a help subcommand
						subs = cmd.Subcommands
					}
					completeWords(c, e, subs, cmd.VisibleFlags(), kind, cmd.SkipFlagParsing)
				}
			}
			walk(cmd.Subcommands, false)
		}
	}
	walk(app.Commands, true)
}

// completeWords prints the candidates for the word after the request's
// words. The shell filters them by what was typed.
func completeWords(c *cli.Context, e *env, subs []*cli.Command, flags []cli.Flag, kind completeArg, ownFlags bool) {
	words, _ := c.App.Metadata[completingKey].([]string)
	if ownFlags {
		// set, whisper and test parse --type themselves.
		flags = append(slices.Clone(flags), &cli.StringFlag{Name: "type", Aliases: []string{"t"}})
	}
	out := c.App.Writer
	if len(words) > 0 {
		last := words[len(words)-1]
		if strings.HasPrefix(last, "-") && last != "--" && !strings.Contains(last, "=") {
			name := flagName(last)
			if f := findFlag(flags, name); f != nil && takesValue(f) || name == "home" {
				for _, v := range flagValues[name] {
					fmt.Fprintln(out, v)
				}
				return
			}
			seen := map[string]bool{}
			for _, f := range append(flags, cli.HelpFlag) {
				for _, n := range f.Names() {
					if !seen[n] {
						seen[n] = true
						fmt.Fprintln(out, dashed(n))
					}
				}
			}
			return
		}
	}
	if len(subs) > 0 {
		for _, s := range subs {
			if !s.Hidden {
				fmt.Fprintln(out, s.Name)
			}
		}
		return
	}
	args := c.Args().Slice()
	switch kind {
	case argVar, argJob, argRunning, argFinished:
		if len(args) > 0 {
			return
		}
	case argNone:
		return
	}
	for _, w := range daemonWords(c, e, kind) {
		fmt.Fprintln(out, w)
	}
}

// daemonWords asks the daemon for the candidates of kind; any failure (no
// daemon, a slow one) gives none.
func daemonWords(c *cli.Context, e *env, kind completeArg) []string {
	if e.homeFlag == "" {
		e.homeFlag = c.String("home") // Before does not run while completing
	}
	cl, err := e.Client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.Context, completionTimeout)
	defer cancel()
	var out []string
	switch kind {
	case argVar, argVars, argAssign:
		vars, err := cl.Vars(ctx)
		if err != nil {
			return nil
		}
		for name := range vars {
			if kind == argAssign {
				name += "="
			}
			out = append(out, name)
		}
	case argJob:
		jobs, err := cl.Names(ctx)
		if err != nil {
			return nil
		}
		for _, j := range jobs {
			out = append(out, j.Name)
		}
	case argRunning:
		runs, err := cl.Jobs(ctx)
		if err != nil {
			return nil
		}
		for _, r := range runs {
			out = append(out, fmt.Sprint(r.Serial))
		}
	case argFinished:
		runs, err := cl.Log(ctx, "", 20)
		if err != nil {
			return nil
		}
		for _, r := range runs {
			out = append(out, fmt.Sprint(r.Serial))
		}
	}
	if kind != argRunning && kind != argFinished {
		slices.Sort(out)
	}
	return out
}

func takesValue(f cli.Flag) bool {
	d, ok := f.(cli.DocGenerationFlag)
	return ok && d.TakesValue()
}

// dashed is a flag name as typed: "-n", "--json".
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}
