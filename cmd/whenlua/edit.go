package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/whenlua/whenlua"
)

const editDescription = `FILE is a job file of the jobs directory, named with or without ".lua"; it
is created if it does not exist. Without FILE, the jobs directory must hold
exactly one job file, which is edited.

The editor ($VISUAL, else $EDITOR, else vi; run by /bin/sh, so it may carry
arguments) works on a copy in a private temporary directory. When it exits:
an unchanged copy installs nothing; a changed one is checked as 'whenlua
check' does, with require from the jobs directory's lib/ and job names that
must not clash with the other job files (those the daemon has loaded, or,
without a daemon, those in the directory). A copy that checks replaces the
file atomically, and a running daemon is asked to reload and tells whether
the new version is active. A copy that does not check is not installed: on a
terminal you are asked whether to edit it again; otherwise the errors are
printed, the copy is kept (its path is printed) and the exit status is 1.`

// editCommand is `whenlua edit [FILE]`.
func editCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "edit",
		Usage:       "edit a job file on a copy with $EDITOR; install it only if it checks",
		ArgsUsage:   "[FILE]",
		Description: editDescription,
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usageErrorf("usage: %s [FILE]", c.Command.HelpName)
			}
			p, err := e.Paths()
			if err != nil {
				return err
			}
			name, err := editTarget(p.JobsDir, c.Args().First())
			if err != nil {
				return err
			}
			return e.edit(c.Context, p, filepath.Join(p.JobsDir, name))
		},
	}
}

// jobFileNames lists the job files of dir as the daemon sees them: *.lua,
// not hidden, not an editor's lock file.
func jobFileNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var names []string
	for _, de := range entries {
		n := de.Name()
		if whenlua.IsJobFile(n) && de.Type().IsRegular() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// editTarget returns the file name in dir that arg names (".lua" added
// when missing), or, without arg, the only job file of dir.
func editTarget(dir, arg string) (string, error) {
	if arg == "" {
		names, err := jobFileNames(dir)
		if err != nil {
			return "", err
		}
		switch len(names) {
		case 1:
			return names[0], nil
		case 0:
			return "", usageErrorf("%s holds no job file: name the one to create (whenlua edit NAME)", dir)
		}
		return "", usageErrorf("%s holds %d job files (%s): name the one to edit", dir, len(names), strings.Join(names, ", "))
	}
	if strings.ContainsRune(arg, '/') || arg == "." || arg == ".." {
		return "", usageErrorf("%q: FILE is the name of a file in the jobs directory %s, not a path", arg, dir)
	}
	name := arg
	if !strings.HasSuffix(name, ".lua") {
		name += ".lua"
	}
	if !whenlua.IsJobFile(name) {
		return "", usageErrorf("%q: the daemon ignores job files whose name starts with . or #", arg)
	}
	return name, nil
}

// edit runs the editor on a copy of target until the copy checks or the
// user gives up, then installs it and reports the daemon's load of it.
func (e *env) edit(ctx context.Context, p whenlua.Paths, target string) error {
	orig, err := os.ReadFile(target)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	perm := os.FileMode(0o600)
	if fi, err := os.Stat(target); err == nil {
		perm = fi.Mode().Perm()
	}
	tmpdir, err := os.MkdirTemp("", "whenlua-edit-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	copyPath := filepath.Join(tmpdir, filepath.Base(target))
	if err := os.WriteFile(copyPath, orig, 0o600); err != nil {
		os.RemoveAll(tmpdir)
		return fmt.Errorf("copy %s: %w", target, err)
	}
	kept := func(format string, args ...any) error {
		return fmt.Errorf("%s; your edited copy is kept at %s", fmt.Sprintf(format, args...), copyPath)
	}
	interactive := term.IsTerminal(int(os.Stdin.Fd()))
	var edited []byte
	for {
		if err := e.runEditor(copyPath); err != nil {
			return kept("%v: %s not changed", err, target)
		}
		if edited, err = os.ReadFile(copyPath); err != nil {
			return kept("read the edited copy: %v", err)
		}
		if bytes.Equal(edited, orig) {
			os.RemoveAll(tmpdir)
			if exists {
				fmt.Fprintf(e.stdout, "no changes: %s left as it was\n", target)
			} else {
				fmt.Fprintf(e.stdout, "no changes: %s not created\n", target)
			}
			return nil
		}
		problems := checkSource(copyPath, edited, p.LibDir, e.otherJobNames(ctx, p, target))
		for _, pr := range problems {
			fmt.Fprintln(e.stderr, problemLine(pr))
		}
		if !hasErrors(problems) {
			break
		}
		if !interactive || !e.askYes("edit again? [Y/n] ") {
			return kept("%s not changed", target)
		}
	}

	now, err := os.ReadFile(target)
	if (err == nil) != exists || !bytes.Equal(now, orig) {
		return kept("%s changed on disk while you edited it: nothing installed", target)
	}
	if err := installFile(target, edited, perm); err != nil {
		return kept("install %s: %v", target, err)
	}
	os.RemoveAll(tmpdir)

	cl, err := e.Client()
	if err != nil {
		return err
	}
	st, err := cl.Reload(ctx, whenlua.ReloadRequest{})
	if errors.Is(err, whenlua.ErrNoDaemon) {
		fmt.Fprintf(e.stdout, "installed %s; no daemon is running: it loads when the daemon starts\n", target)
		return nil
	}
	if err != nil {
		return fmt.Errorf("installed %s, but the reload failed: %w", target, err)
	}
	for _, f := range st.Files {
		if f.Path != target {
			continue
		}
		if f.Error != "" {
			fmt.Fprintln(e.stderr, oneLine(f.Error))
			if f.Generation > 0 {
				return fmt.Errorf("installed %s, but the daemon did not load it: generation %d stays active", target, f.Generation)
			}
			return fmt.Errorf("installed %s, but the daemon did not load it", target)
		}
		fmt.Fprintf(e.stdout, "installed %s: active, generation %d, %s\n", target, f.Generation, plural(f.Jobs, "job"))
		return nil
	}
	return fmt.Errorf("installed %s, but the daemon does not list it (is its jobs directory %s?)", target, st.JobsDir)
}

// runEditor runs $VISUAL, $EDITOR or vi on path, through /bin/sh so that
// the variable may hold arguments, on this process's terminal.
func (e *env) runEditor(path string) error {
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	cmd := exec.Command("/bin/sh", "-c", editor+` "$@"`, editor, path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, e.stdout, e.stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("editor %s: %w", editor, err)
	}
	return nil
}

// askYes asks a yes/no question on the terminal; yes is the default.
func (e *env) askYes(question string) bool {
	fmt.Fprint(e.stderr, question)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(e.stderr)
		return false
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "" || a == "y" || a == "yes"
}

// otherJobNames returns the job names of the job files other than target,
// each with its file:line: those the daemon has loaded, or, without a
// daemon, those of the files in the jobs directory that load.
func (e *env) otherJobNames(ctx context.Context, p whenlua.Paths, target string) map[string]string {
	taken := map[string]string{}
	if cl, err := e.Client(); err == nil {
		if infos, err := cl.Names(ctx); err == nil {
			for _, j := range infos {
				if !samePath(j.File, target) {
					taken[j.Name] = fmt.Sprintf("%s:%d", j.File, j.Line)
				}
			}
			return taken
		}
	}
	names, _ := jobFileNames(p.JobsDir)
	for _, n := range names {
		if path := filepath.Join(p.JobsDir, n); !samePath(path, target) {
			_ = checkFile(path, p.LibDir, taken)
		}
	}
	return taken
}

// installFile replaces target with data atomically: a temporary file in
// the same directory, named with a leading dot so that the daemon ignores
// it, written, synced and renamed over target; then the directory is synced.
func installFile(target string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), target)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
