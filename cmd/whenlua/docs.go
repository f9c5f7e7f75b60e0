package main

//go:generate go run . docs markdown -o ../../docs/cli.md
//go:generate go run . docs man -o ../../docs/whenlua.1

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
)

// docsCommand is the hidden `whenlua docs markdown|man [-o FILE]`: the
// command-line reference generated from the command definitions, so that
// docs/cli.md and docs/whenlua.1 cannot drift from them (`go generate
// ./cmd/whenlua` rewrites both; a test fails when they are stale).
func docsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "docs",
		Hidden:    true,
		Usage:     "print the command-line reference as markdown or as a man page",
		ArgsUsage: "markdown|man",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "o", Usage: "write to `FILE` instead of stdout"},
		},
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "markdown|man [-o FILE]"); err != nil {
				return err
			}
			var gen func() (string, error)
			switch c.Args().First() {
			case "markdown":
				gen = referenceMarkdown
			case "man":
				gen = referenceMan
			default:
				return usageErrorf("unknown format %q (want markdown or man)", c.Args().First())
			}
			text, err := gen()
			if err != nil {
				return err
			}
			if path := c.String("o"); path != "" {
				return os.WriteFile(path, []byte(text), 0o644)
			}
			_, err = io.WriteString(e.stdout, text)
			return err
		},
	}
}

// referenceApp is the command tree as documented: each command's usage
// line gets its synopsis and description, which urfave/cli's markdown
// template leaves out.
func referenceApp() *cli.App {
	app := newApp(&env{stdout: io.Discard, stderr: io.Discard})
	app.Description = referenceDescription
	app.UsageText = referenceUsage
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			p := path + " " + cmd.Name
			if len(cmd.Subcommands) == 0 {
				cmd.UsageText = synopsis(p, cmd)
			}
			if cmd.Description != "" {
				cmd.Usage += ".\n\n" + strings.TrimSpace(cmd.Description)
			}
			walk(p, cmd.Subcommands)
		}
	}
	walk("whenlua", app.Commands)
	return app
}

// synopsis is a command's usage line: "whenlua history [-n N] [--json] NAME".
func synopsis(path string, cmd *cli.Command) string {
	parts := []string{path}
	if cmd.SkipFlagParsing {
		return path + " " + cmd.ArgsUsage
	}
	for _, f := range cmd.VisibleFlags() {
		name := dashed(f.Names()[0])
		if d, ok := f.(cli.DocGenerationFlag); ok && d.TakesValue() {
			placeholder := "VALUE"
			if _, rest, ok := strings.Cut(d.GetUsage(), "`"); ok {
				if name, _, ok := strings.Cut(rest, "`"); ok {
					placeholder = name
				}
			}
			name += " " + placeholder
		}
		parts = append(parts, "["+name+"]")
	}
	if cmd.ArgsUsage != "" {
		parts = append(parts, cmd.ArgsUsage)
	}
	return strings.Join(parts, " ")
}

// referenceUsage is the command line's shape.
const referenceUsage = "whenlua [--home DIR] COMMAND [OPTIONS] [ARGUMENTS...]"

// referenceDescription opens the reference: what whenlua is, where it
// keeps things, and its exit status.
const referenceDescription = `whenlua is a per-user job scheduler. Its daemon runs shell jobs periodically
(every) or when a condition over named variables becomes true (when). Job files are
Lua; they are reloaded when they change on disk. Variables are typed, durable and
versioned. Every command but **daemon run** talks to the daemon over a unix socket.
The job-file language is described in docs/jobs.md.

**Files.** With **--home DIR** or **$WHENLUA_HOME**, everything is under DIR: DIR/jobs/
(job files, and DIR/jobs/lib/ for the modules they require), DIR/state/ (the database,
run directories, the daemon's lock), DIR/whenlua.sock and DIR/daemon.log. Otherwise
job files are in $XDG_CONFIG_HOME/whenlua/jobs (~/.config/whenlua/jobs), state in
$XDG_STATE_HOME/whenlua (~/.local/state/whenlua) and the socket in
$XDG_RUNTIME_DIR/whenlua.sock.

**Arguments.** Flags may stand before or after the arguments (whenlua history n -n 5).
Listing commands accept --json. For set, whisper and test, values are strings unless
--type says otherwise; a --type applies to the pairs after it until the next --type.
Values are stored byte for byte: a string that is not UTF-8 stays as given, and **--json**
output carries it in base64 ({"type":"string","base64":"//5B"}).

**Trust.** A command talks only to a daemon of its own user: the socket must be a socket
(not a symbolic link) owned by the user, and the process listening on it must run as the
user; otherwise the command sends nothing and says so. The daemon likewise serves only
its own user.

**Exit status.** 0 on success, 1 on failure (get: the variable is unset; a bad name or
value, and nothing was changed), 2 on a usage error (an unknown command or flag, a
missing argument, a pair without =). Errors go to stderr, one line each. A command
that needs the daemon and finds none says so and how to start it.`

// referenceMarkdown is docs/cli.md.
func referenceMarkdown() (string, error) {
	md, err := referenceApp().ToMarkdown()
	if err != nil {
		return "", fmt.Errorf("generate markdown: %w", err)
	}
	return docsHeader + tidyMarkdown(md), nil
}

var (
	// synopsisMD is the SYNOPSIS urfave/cli writes: the app name and its
	// global flags as "[--home]=[value]".
	synopsisMD = regexp.MustCompile("(?s)# SYNOPSIS\n\n.*?\n\n# DESCRIPTION")
	// flagMD is a flag that takes a value, as urfave/cli writes it
	// ("**--home**=\"\": put ... under `DIR` ..."), with its placeholder.
	flagMD = regexp.MustCompile("(?m)^(\\*\\*-[^*]+\\*\\*)=\"\": (.*?)`([A-Z]+)`")
)

// tidyMarkdown writes the synopsis as the usage line and a flag's value as
// its placeholder (**--home** DIR: put ... under DIR).
func tidyMarkdown(md string) string {
	md = synopsisMD.ReplaceAllLiteralString(md, "# SYNOPSIS\n\n```\n"+referenceUsage+"\n```\n\n# DESCRIPTION")
	return flagMD.ReplaceAllString(md, "$1 $3: $2$3")
}

// docsHeader says where docs/cli.md comes from.
const docsHeader = "<!-- Generated by `go generate ./cmd/whenlua` (whenlua docs markdown) from the command definitions; do not edit. -->\n\n"

// referenceMan is docs/whenlua.1.
func referenceMan() (string, error) {
	man, err := referenceApp().ToManWithSection(1)
	if err != nil {
		return "", fmt.Errorf("generate man page: %w", err)
	}
	return tidyMan(man), nil
}

var (
	// synopsisMan and flagMan are synopsisMD and flagMD in roff: the
	// placeholder is written \fBDIR\fR.
	synopsisMan = regexp.MustCompile("(?s)\\.SH SYNOPSIS\n.*?\n\n\n\\.SH DESCRIPTION")
	flagMan     = regexp.MustCompile(`(?m)^(\\fB-[^\\]+\\fP)="": (.*?)\\fB([A-Z]+)\\fR`)
)

// tidyMan is tidyMarkdown for the man page.
func tidyMan(man string) string {
	man = synopsisMan.ReplaceAllLiteralString(man, ".SH SYNOPSIS\n.EX\n"+referenceUsage+"\n.EE\n\n\n.SH DESCRIPTION")
	return flagMan.ReplaceAllString(man, "$1 \\fI$3\\fR: $2\\fI$3\\fR")
}
