package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs lets flags stand after the arguments (`history n -n 5`):
// urfave/cli stops parsing flags at the first positional argument, so the
// flags of the command found after its arguments are moved in front of
// them, each with its value, and global flags found anywhere after the
// command are moved in front of the command. Everything after "--" stays
// as it is: it is never a flag. A -h or --help before it drops the
// arguments, so that it shows the command's help (urfave/cli would take
// them for a help topic). Commands that parse their own arguments (SkipFlagParsing: set,
// whisper, test) keep their order; only global flags are taken out of them.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	var globals, path, flags, pos []string
	help := false
	rest := args[1:]

	// Leading global flags.
	for len(rest) > 0 && isFlag(rest[0]) {
		n := flagLen(rest, app.Flags)
		globals = append(globals, rest[:n]...)
		rest = rest[n:]
	}
	if len(rest) == 0 {
		return args
	}
	cmd := app.Command(rest[0])
	if cmd == nil {
		return args
	}
	path = append(path, rest[0])
	rest = rest[1:]
	for len(cmd.Subcommands) > 0 && len(rest) > 0 {
		sub := cmd.Command(rest[0])
		if sub == nil {
			break
		}
		cmd = sub
		path = append(path, rest[0])
		rest = rest[1:]
	}

	for i := 0; i < len(rest); {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			i++
			continue
		}
		if findFlag(app.Flags, flagName(a)) != nil {
			n := flagLen(rest[i:], app.Flags)
			globals = append(globals, rest[i:i+n]...)
			i += n
			continue
		}
		if cmd.SkipFlagParsing {
			pos = append(pos, a)
			i++
			continue
		}
		if name := flagName(a); (name == "h" || name == "help") && len(cmd.Subcommands) == 0 {
			// A help flag asks for the command's help: urfave/cli would
			// take the arguments beside it for a help topic.
			help = true
		}
		n := flagLen(rest[i:], cmd.Flags)
		flags = append(flags, rest[i:i+n]...)
		i += n
	}
	if help {
		pos = nil
	}
	out := make([]string, 0, len(args))
	out = append(out, args[0])
	out = append(out, globals...)
	out = append(out, path...)
	out = append(out, flags...)
	return append(out, pos...)
}

// isFlag reports whether a looks like a flag ("-n", "--json", "--type=int").
func isFlag(a string) bool {
	return len(a) > 1 && a[0] == '-' && a != "--"
}

// flagName is a flag argument's name without dashes and "=value".
func flagName(a string) string {
	name := strings.TrimLeft(a, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	return name
}

// flagLen is how many arguments the flag at args[0] takes: 2 when it needs
// a value given separately, else 1. Unknown flags count 1 (the parser then
// reports them).
func flagLen(args []string, defs []cli.Flag) int {
	a := args[0]
	if strings.Contains(a, "=") || len(args) < 2 {
		return 1
	}
	f := findFlag(defs, flagName(a))
	if f == nil {
		return 1
	}
	if _, ok := f.(*cli.BoolFlag); ok {
		return 1
	}
	return 2
}

func findFlag(defs []cli.Flag, name string) cli.Flag {
	for _, f := range defs {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}
