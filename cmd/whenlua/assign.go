package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// assignUsage is the argument syntax of set, whisper and test.
const assignUsage = "[--type string|int|float|bool] NAME=VALUE ..."

// errHelp asks for the command's help.
var errHelp = fmt.Errorf("help requested")

// parseAssignments parses `[--type T] NAME=VALUE ...` in order, as whenjobs
// does: a --type applies to the pairs after it until the next --type. A
// missing "=" or an unknown flag is a usage error; a bad name or a value
// that does not parse as its type is an error wrapping ErrInvalid. Nothing
// is returned unless every pair is good: the pairs are checked with
// whenlua.SetRequest.Validate, as the daemon checks them, so that a bad set
// is refused before anything is sent.
func parseAssignments(args []string) ([]whenlua.Assignment, error) {
	typ := whenlua.TypeString
	var out []whenlua.Assignment
	literal := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !literal {
			switch {
			case a == "--":
				literal = true
				continue
			case a == "-h" || a == "--help":
				return nil, errHelp
			case a == "--type" || a == "-type" || a == "-t":
				if i+1 >= len(args) {
					return nil, usageErrorf("%s needs a type: string, int, float or bool", a)
				}
				i++
				t, err := whenlua.ParseType(args[i])
				if err != nil {
					return nil, usageErrorf("%v", err)
				}
				typ = t
				continue
			case strings.HasPrefix(a, "--type=") || strings.HasPrefix(a, "-type=") || strings.HasPrefix(a, "-t="):
				t, err := whenlua.ParseType(a[strings.IndexByte(a, '=')+1:])
				if err != nil {
					return nil, usageErrorf("%v", err)
				}
				typ = t
				continue
			case isFlag(a):
				return nil, usageErrorf("unknown flag %s (want %s)", a, assignUsage)
			}
		}
		eq := strings.IndexByte(a, '=')
		if eq < 0 {
			return nil, usageErrorf("%q is not NAME=VALUE", a)
		}
		name, raw := a[:eq], a[eq+1:]
		v, err := whenlua.ParseValue(typ, raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", whenlua.ErrInvalid, name, err)
		}
		out = append(out, whenlua.Assignment{Name: name, Value: v})
	}
	if len(out) == 0 {
		return nil, usageErrorf("no NAME=VALUE given (want %s)", assignUsage)
	}
	if err := (whenlua.SetRequest{Assignments: out}).Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// assignCommand builds set, whisper or test: they parse their arguments
// themselves, in order, because --type applies to the pairs after it.
func assignCommand(e *env, name, usage string, mode whenlua.Mode, done func(*cli.Context, whenlua.SetResponse) error) *cli.Command {
	return &cli.Command{
		Name:            name,
		Usage:           usage,
		ArgsUsage:       assignUsage,
		SkipFlagParsing: true,
		Description: "Values are strings unless --type says otherwise; a --type applies to the\n" +
			"pairs after it until the next --type. An int is decimal, or 0x hex, 0o octal,\n" +
			"0b binary; a bool is true or false (also yes/no, on/off, 1/0). All pairs are\n" +
			"applied atomically; if any name or value is bad, nothing is sent. A value is\n" +
			"stored byte for byte, also bytes that are not UTF-8, and jobs get it so. A\n" +
			"float must be finite (not NaN or an infinity). One set takes at most 1000\n" +
			"pairs and 256 KiB of names and values; split a larger one.",
		Action: func(c *cli.Context) error {
			as, err := parseAssignments(c.Args().Slice())
			if err == errHelp {
				return cli.ShowCommandHelp(c.Lineage()[1], name)
			}
			if err != nil {
				return err
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			resp, err := cl.Set(c.Context, whenlua.SetRequest{Mode: mode, Assignments: as})
			if err != nil {
				return err
			}
			if done != nil {
				return done(c, resp)
			}
			return nil
		},
	}
}
