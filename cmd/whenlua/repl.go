package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/luaapi"
)

const replDescription = `Each line is Lua, evaluated as a string condition would be: an expression
prints its value ("return <line>" is tried first, as in the Lua 5.3 REPL), a
statement runs, an error is printed and the session goes on, and an
unfinished chunk asks for more with ">> ".

Bare names are variables of a snapshot taken at the start (nil when unset),
even where Lua has a global of that name (load, type, next...). The names
that are not variables: changes, increases, decreases, prev, reloaded, vars,
tonumber, tostring, string, math (as in string conditions), print, test, set,
whisper, refresh, jobs, why, help, and _G, through which every other Lua global is
reached (_G.pairs, _G.type). A global assigned at the prompt is kept for the
session and hides the variable of that name.

  vars() or vars      the snapshot as NAME=VALUE lines (quoted as by vars)
  refresh()           take a new snapshot; the old one becomes the previous one
  changes("x") prev("x") increases("x") decreases("x") reloaded()
                      compare the snapshot with the previous one; before the
                      first refresh there is none (prev is nil, reloaded() true)
  test{x = 1, ...}    print the jobs that would run if these values were set
                      (the daemon's test: nothing changes)
  jobs()              every loaded job
  why("JOB")          the job's last evaluations, as whenlua why prints them

With --file F (repeatable) no daemon is used: the files are loaded as
'whenlua check' loads them (require from the lib/ directory next to each),
variables start empty (top-level code and on_load may set some), and F's
when-jobs are evaluated in this process as the daemon would evaluate them,
each with its own previous snapshot and edge state, once at load with
reloaded() true. set{...} and whisper{...} change these local variables
(set prints the jobs it makes due, or "(none)"; nothing runs) and the
prompt's snapshot; the prompt's previous snapshot, which prev() and
changes() compare with, moves only at refresh(). test{...} does what set
would and undoes it. Without --file, set and whisper raise: use 'whenlua
set'.

On a terminal: line editing, Up/Down through the history, kept in the state
directory (repl_history); Ctrl-C drops the line, Ctrl-D on an empty line
quits. Otherwise lines are read from stdin without prompts: values go to
stdout, errors to stderr, and the exit status is 1 if any line failed.`

// replCommand is `whenlua repl [--file F]`: a Lua prompt over a snapshot of
// the variables, with the condition helpers and test().
func replCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "repl",
		Usage:       "interactive Lua with the variables, the condition helpers and test()",
		Description: replDescription,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "file", Aliases: []string{"f"}, Usage: "load job `FILE` without a daemon; variables start empty"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			opts := luaapi.ReplOptions{}
			var banner string
			if files := c.StringSlice("file"); len(files) > 0 {
				l, errs := luaapi.OpenLocal(files, 0)
				if len(errs) > 0 {
					for _, err := range errs {
						fmt.Fprintln(e.stderr, problemLine(err))
					}
					return silentExit(1)
				}
				defer l.Close()
				opts.Backend = l
				opts.LibDir = filepath.Join(filepath.Dir(files[0]), "lib")
				banner = fmt.Sprintf("whenlua repl on %s, without a daemon", strings.Join(files, ", "))
				if len(l.Loaded.Triggered) > 0 {
					banner += "; due at load: " + strings.Join(l.Loaded.Triggered, ", ")
				}
			} else {
				p, err := e.Paths()
				if err != nil {
					return err
				}
				cl, err := e.Client()
				if err != nil {
					return err
				}
				opts.Backend = &daemonBackend{ctx: c.Context, cl: cl}
				opts.LibDir = p.LibDir
				opts.SetHint = "the REPL does not change the daemon's variables: try values with test{...}; set them with whenlua set"
				banner = "whenlua repl on the daemon of " + p.Where()
			}
			return e.repl(c.Context, opts, banner)
		},
	}
}

// daemonBackend serves the REPL from the daemon: the snapshot is its
// variables, test() its ModeTest set; set and whisper are refused.
type daemonBackend struct {
	ctx context.Context
	cl  *whenlua.Client
}

func (b *daemonBackend) Vars() (map[string]whenlua.Value, error) { return b.cl.Vars(b.ctx) }

func (b *daemonBackend) Names() ([]whenlua.JobInfo, error) { return b.cl.Names(b.ctx) }

func (b *daemonBackend) Why(job string) (whenlua.WhyReport, error) { return b.cl.Why(b.ctx, job) }

func (b *daemonBackend) Set(mode whenlua.Mode, as []whenlua.Assignment) (luaapi.ReplResult, error) {
	if mode != whenlua.ModeTest {
		return luaapi.ReplResult{}, errors.New("refused")
	}
	resp, err := b.cl.Set(b.ctx, whenlua.SetRequest{Mode: whenlua.ModeTest, Assignments: as})
	return luaapi.ReplResult{Triggered: resp.Triggered}, err
}

// errInterrupted is what a line reader returns when the user pressed Ctrl-C.
var errInterrupted = errors.New("interrupted")

// lineReader reads input lines; prompt is shown only on a terminal.
type lineReader interface {
	readLine(prompt string) (string, error)
}

// pipeReader reads lines from a file or a pipe, without prompts.
type pipeReader struct{ br *bufio.Reader }

func (p *pipeReader) readLine(string) (string, error) {
	line, err := p.br.ReadString('\n')
	if err == io.EOF && line != "" {
		err = nil
	}
	return strings.TrimRight(line, "\r\n"), err
}

// repl runs a session on stdin: a terminal session with line editing and a
// history when stdin and stdout are terminals, else a scripted one.
func (e *env) repl(ctx context.Context, opts luaapi.ReplOptions, banner string) error {
	if tty := openTTY(); tty != nil {
		return e.replTTY(ctx, tty, opts, banner)
	}
	opts.Out = e.stdout
	r, err := luaapi.NewRepl(opts)
	if err != nil {
		return err
	}
	defer r.Close()
	if replLoop(r, &pipeReader{br: bufio.NewReaderSize(os.Stdin, 64<<10)}, e.stderr) {
		return silentExit(1)
	}
	return nil
}

// replLoop reads chunks from rd and evaluates them until EOF, printing
// errors to errw. It reports whether any chunk failed.
func replLoop(r *luaapi.Repl, rd lineReader, errw io.Writer) (failed bool) {
	var chunk string
	var pending error // the syntax error of an unfinished chunk
	for {
		prompt := "> "
		if chunk != "" {
			prompt = ">> "
		}
		line, err := rd.readLine(prompt)
		if errors.Is(err, errInterrupted) {
			chunk = ""
			continue
		}
		if err != nil {
			if chunk != "" && pending != nil {
				fmt.Fprintln(errw, pending)
				failed = true
			}
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(errw, "whenlua: read input: %v\n", err)
				failed = true
			}
			return failed
		}
		if chunk == "" {
			if strings.TrimSpace(line) == "" {
				continue
			}
			// "=expr" prints expr, as in the Lua 5.1 REPL.
			if rest, ok := strings.CutPrefix(line, "="); ok {
				line = "return " + rest
			}
			chunk = line
		} else {
			chunk += "\n" + line
		}
		incomplete, err := r.Eval(chunk)
		if incomplete {
			pending = err
			continue
		}
		chunk, pending = "", nil
		if err != nil {
			fmt.Fprintln(errw, err)
			failed = true
		}
	}
}
