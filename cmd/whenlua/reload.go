package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// reloadCommand is `whenlua reload [--force [FILE...]]`: rescan the jobs
// directory now. A file whose content did not change is not loaded again
// (a touch changes nothing), unless --force: then the FILEs given, or every
// job file, are loaded again. It prints the job files' state and exits 1
// when a file failed to load (its previous version, if any, stays active).
func reloadCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "reload",
		Usage:     "rescan the jobs directory now; exit 1 if a file fails to load",
		ArgsUsage: "[FILE...] (with --force)",
		Description: "Files whose content changed are loaded again, as on a save. A file whose\n" +
			"content did not change is left as it is (touch changes nothing), unless\n" +
			"--force: then each FILE given (a file name in the jobs directory, with or\n" +
			"without .lua, or a path to one of its files), or every job file, is loaded\n" +
			"again, for example after a change of the daemon's environment that a module\n" +
			"reads. Conditions suspended for running out of their time or memory limit\n" +
			"again and again are evaluated again.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "load the FILEs given, or every job file, again even if unchanged"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			req := whenlua.ReloadRequest{Force: c.Bool("force")}
			if c.NArg() > 0 {
				if !req.Force {
					return usageErrorf("usage: %s [--force [FILE...]]: files are given only with --force", c.Command.HelpName)
				}
				p, err := e.Paths()
				if err != nil {
					return err
				}
				for _, arg := range c.Args().Slice() {
					path, err := jobFilePath(p, arg)
					if err != nil {
						return err
					}
					req.Files = append(req.Files, path)
				}
			}
			cl, err := e.Client()
			if err != nil {
				return err
			}
			st, err := cl.Reload(c.Context, req)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := e.printJSON(st); err != nil {
					return err
				}
			}
			failed := 0
			for _, f := range st.Files {
				if f.Error != "" {
					failed++
					fmt.Fprintf(e.stderr, "whenlua: %s\n", oneLine(f.Error))
				} else if !c.Bool("json") {
					fmt.Fprintf(e.stdout, "%s\tgeneration %d\t%s\n", f.Path, f.Generation, plural(f.Jobs, "job"))
				}
			}
			if failed > 0 {
				return silentExit(1)
			}
			return nil
		},
	}
}

// jobFilePath returns the path the daemon knows a job file by: arg is a
// file name (no slash) in the jobs directory, with or without its .lua as
// edit takes it, or a path to one of its files.
func jobFilePath(p whenlua.Paths, arg string) (string, error) {
	path := arg
	if !strings.Contains(arg, "/") {
		name := arg
		if !whenlua.IsJobFile(name) && whenlua.IsJobFile(name+".lua") {
			name += ".lua"
		}
		path = filepath.Join(p.JobsDir, name)
	}
	if !samePath(filepath.Dir(path), p.JobsDir) || !whenlua.IsJobFile(filepath.Base(path)) {
		return "", fmt.Errorf("%w: %s is not a job file of %s", whenlua.ErrInvalid, arg, p.JobsDir)
	}
	path = filepath.Join(p.JobsDir, filepath.Base(path))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%w: no job file %s", whenlua.ErrNotFound, path)
	}
	return path, nil
}
