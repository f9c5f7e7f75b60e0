package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/luaapi"
)

// checkCommand is `whenlua check FILE...`: each file is loaded as the
// daemon would load it (compiled, top-level code run under the time limit,
// jobs validated, on_load called; `require` from the lib/ directory next to
// the file), without a daemon and with variables in memory. Job names must
// also be unique across the files given, as across a jobs directory, and,
// for files of the jobs directory, with its other files, as the daemon
// would see them (checkJobsDir). It prints nothing and exits 0 when all
// load; otherwise one line per problem, "file:line: message", on stderr
// (the files in the order given), and exits 1. Warnings ("file:line:
// warning: message") are printed too, and do not fail the check.
func checkCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "load job files without a daemon; print errors as file:line: message",
		ArgsUsage: "FILE...",
		Description: "Each file is loaded as the daemon would load it: compiled, its top-level\n" +
			"code run under the time limit, its jobs validated, on_load called, require\n" +
			"from the lib/ directory next to it, with variables in memory. Job names must\n" +
			"be unique across the files given and, for a file of the jobs directory, with\n" +
			"the directory's other files as the daemon sees them: the jobs it has loaded\n" +
			"or, without a daemon, those of the files that load before it (the daemon\n" +
			"loads a directory in name order). Nothing is printed when all load.\n\n" +
			"A warning (file:line: warning: message) is printed for what loads but is\n" +
			"most likely a mistake, without failing the check: a condition helper given\n" +
			"a bare name that is not a local, changes(x) where changes('x') is meant.",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf("usage: %s FILE...", c.Command.HelpName)
			}
			var paths []string
			for _, path := range c.Args().Slice() {
				if !slices.ContainsFunc(paths, func(q string) bool { return samePath(q, path) }) {
					paths = append(paths, path)
				}
			}
			// The files of the jobs directory first, as the daemon would
			// load them; then the others, each against the files given
			// that loaded.
			var inDir, rest []string
			p, perr := e.Paths()
			for _, path := range paths {
				if perr == nil && whenlua.IsJobFile(filepath.Base(path)) && samePath(filepath.Dir(path), p.JobsDir) {
					inDir = append(inDir, path)
				} else {
					rest = append(rest, path)
				}
			}
			problems := map[string][]error{}
			given := map[string]string{} // job names of the files given that loaded
			if len(inDir) > 0 {
				e.checkJobsDir(c.Context, p, inDir, given, problems)
			}
			for _, path := range rest {
				problems[path] = checkFile(path, filepath.Join(filepath.Dir(path), "lib"), given)
			}
			failed := false
			for _, path := range paths {
				for _, p := range problems[path] {
					fmt.Fprintln(e.stderr, problemLine(p))
				}
				failed = failed || hasErrors(problems[path])
			}
			if failed {
				return silentExit(1)
			}
			return nil
		},
	}
}

// checkJobsDir checks targets, files of the jobs directory, against the
// directory as the daemon sees it, and adds the job names of those that
// load to given. With a daemon, a target is checked against the jobs the
// daemon has loaded from its other files, and against the targets before
// it in name order that load. Without one, the directory is loaded in name
// order, as the daemon does when it starts: a file's jobs take their names
// when it loads without a clash, and a target is checked against the files
// before it.
func (e *env) checkJobsDir(ctx context.Context, p whenlua.Paths, targets []string, given map[string]string, problems map[string][]error) {
	slices.SortFunc(targets, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	if cl, err := e.Client(); err == nil {
		if infos, err := cl.Names(ctx); err == nil {
			// The daemon may have many jobs in few files: each file is
			// compared with a target once.
			byFile := map[string][]whenlua.JobInfo{}
			for _, j := range infos {
				byFile[j.File] = append(byFile[j.File], j)
			}
			for _, t := range targets {
				taken := maps.Clone(given)
				for file, jobs := range byFile {
					if samePath(file, t) {
						continue
					}
					for _, j := range jobs {
						taken[j.Name] = fmt.Sprintf("%s:%d", j.File, j.Line)
					}
				}
				if problems[t] = checkFile(t, p.LibDir, taken); !hasErrors(problems[t]) {
					addNames(given, taken, t)
				}
			}
			return
		}
	}
	taken := map[string]string{}
	names, _ := jobFileNames(p.JobsDir)
	for _, n := range names {
		path := filepath.Join(p.JobsDir, n)
		i := slices.IndexFunc(targets, func(t string) bool { return samePath(t, path) })
		if i < 0 {
			_ = checkFile(path, p.LibDir, taken)
			continue
		}
		t := targets[i]
		if problems[t] = checkFile(t, p.LibDir, taken); !hasErrors(problems[t]) {
			addNames(given, taken, t)
		}
	}
	// A target the listing missed (not a regular file) is checked last.
	for _, t := range targets {
		if _, done := problems[t]; !done {
			problems[t] = checkFile(t, p.LibDir, taken)
		}
	}
}

// addNames copies to dst the names in taken declared by path (their
// "file:line" starts with it).
func addNames(dst, taken map[string]string, path string) {
	for name, at := range taken {
		if strings.HasPrefix(at, path+":") {
			dst[name] = at
		}
	}
}

// samePath reports whether a and b name the same file or directory,
// through symbolic links and relative paths; two paths of which one does
// not exist are compared as absolute paths.
func samePath(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb)
		}
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// problemLine puts a load error on one line: a message raised with line
// breaks (error("a\nb") in a job file) has its lines joined with spaces.
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
// in taken (name -> "file:line" of its declaration), or the warnings
// (luaapi.Warning) of a file that loads. A file that loads without a clash
// adds its job names to taken.
func checkFile(path, libDir string, taken map[string]string) []error {
	src, err := luaapi.ReadSource(path)
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
		for _, w := range f.Warnings() {
			problems = append(problems, w)
		}
	}
	return problems
}

// hasErrors reports whether problems holds more than warnings.
func hasErrors(problems []error) bool {
	for _, p := range problems {
		if _, ok := p.(luaapi.Warning); !ok {
			return true
		}
	}
	return false
}
