package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua/luaapi"
)

// checkCommand is `whenlua check FILE...`: each file is loaded as the
// daemon would load it (compiled, top-level code run under the time limit,
// jobs validated, on_load called; `require` from the lib/ directory next to
// the file), without a daemon and with variables in memory. Job names must
// also be unique across the files given, as across a jobs directory, and,
// for files in the jobs directory, with its other files (those the daemon
// has loaded, or, without a daemon, those that load). It
// prints nothing and exits 0 when all load; otherwise one line per problem,
// "file:line: message", on stderr, and exits 1.
func checkCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "load job files without a daemon; print errors as file:line: message",
		ArgsUsage: "FILE...",
		Description: "Each file is loaded as the daemon would load it: compiled, its top-level\n" +
			"code run under the time limit, its jobs validated, on_load called, require\n" +
			"from the lib/ directory next to it, with variables in memory. Job names must\n" +
			"be unique across the files given and, for a file of the jobs directory, with\n" +
			"the directory's other files (those the daemon has loaded, or, without a\n" +
			"daemon, those that load). Nothing is printed when all load.",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf("usage: %s FILE...", c.Command.HelpName)
			}
			var paths, abs []string
			for _, path := range c.Args().Slice() {
				a, err := filepath.Abs(path)
				if err == nil {
					if slices.Contains(abs, a) {
						continue
					}
					abs = append(abs, a)
				}
				paths = append(paths, path)
			}
			taken := map[string]string{}
			// Files of the jobs directory must not clash with its other
			// files either, as when the daemon loads them.
			if p, err := e.Paths(); err == nil && slices.ContainsFunc(abs, func(a string) bool { return filepath.Dir(a) == p.JobsDir }) {
				taken = e.otherJobNames(c.Context, p, abs...)
			}
			failed := false
			for _, path := range paths {
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
