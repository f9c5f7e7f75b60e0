package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// daemonProgramName is the daemon's own program (cmd/whenlua-daemon),
// installed beside whenlua. The commands a user types do not link the
// daemon's packages, so that they start as fast as a small Go program.
const daemonProgramName = "whenlua-daemon"

// daemonRunCommand is `whenlua daemon run`: the daemon in the foreground,
// logging (slog text) to stderr, until SIGTERM, SIGINT or `daemon stop`.
// This process becomes the daemon (exec), so its pid, its signals and its
// output are the daemon's.
func daemonRunCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run the daemon in the foreground, logging to stderr",
		Description: "On a fresh home (no jobs directory yet) a sample job file is installed\n" +
			"as jobs/sample.lua. SIGTERM or SIGINT stops the daemon gracefully; SIGHUP\n" +
			"rescans the jobs directory.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL`: debug, info, warn or error"},
			maxRunsFlag(),
		}, retentionFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return usageErrorf("--log-level: %v", err)
			}
			if err := checkRetention(c); err != nil {
				return err
			}
			if err := checkMaxRuns(c); err != nil {
				return err
			}
			if _, err := e.Paths(); err != nil {
				return err
			}
			prog, err := daemonProgram()
			if err != nil {
				return err
			}
			args := daemonArgs(e, append(append(retentionArgs(c), maxRunsArgs(c)...), "--log-level="+c.String("log-level")))
			if err := syscall.Exec(prog, append([]string{prog}, args...), os.Environ()); err != nil {
				return fmt.Errorf("run %s: %w", prog, err)
			}
			return nil
		},
	}
}

// defaultMaxRuns is the engine's default, shown in the help; a test checks
// that it is host.DefaultMaxRuns.
const defaultMaxRuns = 64

// maxRunsFlag bounds how many jobs have a process at once; `daemon start`
// and `daemon restart` pass it on to the daemon they start.
func maxRunsFlag() cli.Flag {
	return &cli.IntFlag{Name: "max-runs", Value: defaultMaxRuns,
		Usage: "run at most `N` jobs at once; the runs due beyond them wait in a queue, in serial order"}
}

func checkMaxRuns(c *cli.Context) error {
	if n := c.Int("max-runs"); n < 1 {
		return usageErrorf("--max-runs: want at least 1, not %d", n)
	}
	return nil
}

// maxRunsArgs is --max-runs as given to c, for the daemon's program.
func maxRunsArgs(c *cli.Context) []string {
	if !c.IsSet("max-runs") {
		return nil
	}
	return []string{"--max-runs=" + strconv.Itoa(c.Int("max-runs"))}
}

// daemonArgs are the daemon program's arguments for this home.
func daemonArgs(e *env, runArgs []string) []string {
	return append(append(e.homeArgs(), "run"), runArgs...)
}

// daemonProgram finds the daemon's program: beside this one (through
// symbolic links), else on $PATH.
func daemonProgram() (string, error) {
	exe, err := os.Executable()
	if err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		p := filepath.Join(filepath.Dir(exe), daemonProgramName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(daemonProgramName); err == nil {
		return filepath.Abs(p)
	}
	where := "this program"
	if exe != "" {
		where = filepath.Dir(exe)
	}
	return "", errors.New("the daemon's program " + daemonProgramName + " is neither in " + where +
		" nor on $PATH: install it with whenlua (go install ./cmd/... in whenlua's source)")
}

// lastErrorLine returns the last "whenlua: " line of a daemon's output,
// else the first line of a Go runtime crash ("panic: ...", "fatal error:
// ..."), which a stack trace follows, else its last line.
func lastErrorLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if msg, ok := strings.CutPrefix(lines[i], "whenlua: "); ok {
			return msg
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return l
		}
	}
	if len(lines) > 0 && lines[len(lines)-1] != "" {
		return lines[len(lines)-1]
	}
	return "no output"
}
