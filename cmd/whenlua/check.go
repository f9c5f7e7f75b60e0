package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua/luaapi"
)

// checkCommand is `whenlua check FILE...`: each file is loaded as the
// daemon would load it (compiled, top-level code run under the time limit,
// jobs validated, on_load called; `require` from the lib/ directory next to
// the file), without a daemon and with variables in memory. Job names must
// also be unique across the files given, as across a jobs directory. It
// prints nothing and exits 0 when all load; otherwise one line per problem,
// "file:line: message", on stderr, and exits 1.
func checkCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "load job files without a daemon; print errors as file:line: message",
		ArgsUsage: "FILE...",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf("usage: %s FILE...", c.Command.HelpName)
			}
			taken := map[string]string{}
			seen := map[string]bool{}
			failed := false
			for _, path := range c.Args().Slice() {
				abs, err := filepath.Abs(path)
				if err == nil {
					if seen[abs] {
						continue
					}
					seen[abs] = true
				}
				problems := checkFile(path, filepath.Join(filepath.Dir(path), "lib"), taken)
				for _, p := range problems {
					fmt.Fprintln(e.stderr, problemLine(p))
				}
				failed = failed || len(problems) > 0
			}
			if failed {
				return silentExit(1)
			}
			return nil
		},
	}
}

// problemLine puts a load error on one line: gopher-lua's multi-line
// messages (require's "not found:\n\tno file X, ") are joined with spaces.
func problemLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.Trim(l, " \t,"); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// checkFile loads the job file at path (requires from libDir) and returns
// its problems: the load error, or one error per job whose name is already
// in taken (name -> "file:line" of its declaration). A file that loads
// without a clash adds its job names to taken.
func checkFile(path, libDir string, taken map[string]string) []error {
	src, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", path, pe.Err)
		}
		return []error{err}
	}
	return checkSource(path, src, libDir, taken)
}

// checkSource is checkFile on src, the content of path.
func checkSource(path string, src []byte, libDir string, taken map[string]string) []error {
	f, err := luaapi.CheckSource(path, src, libDir)
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	var problems []error
	for _, j := range f.Jobs {
		if at, ok := taken[j.Name]; ok {
			problems = append(problems, &luaapi.LoadError{Path: path, Line: j.Line,
				Msg: fmt.Sprintf("job name %q is already used by %s", j.Name, at)})
		}
	}
	if len(problems) == 0 {
		for _, j := range f.Jobs {
			taken[j.Name] = fmt.Sprintf("%s:%d", path, j.Line)
		}
	}
	return problems
}
