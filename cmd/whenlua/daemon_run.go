package main

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua/examples"
	"github.com/whenlua/whenlua/host"
	"github.com/whenlua/whenlua/luaapi"
)

// daemonRunCommand is `whenlua daemon run`: the daemon in the foreground,
// logging (slog text) to stderr, until SIGTERM, SIGINT or `daemon stop`.
func daemonRunCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run the daemon in the foreground, logging to stderr",
		Description: "On a fresh home (no jobs directory yet) a sample job file is installed\n" +
			"as jobs/sample.lua. SIGTERM or SIGINT stops the daemon gracefully; SIGHUP\n" +
			"rescans the jobs directory. With --etcd the daemon is a node of a cluster\n" +
			"that keeps its state in etcd (docs/cluster.md).",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL`: debug, info, warn or error"},
		}, append(append(engineFlags(), retentionFlags()...), clusterFlags()...)...),
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
			if err := checkEngineFlags(c); err != nil {
				return err
			}
			if err := checkClusterFlags(c); err != nil {
				return err
			}
			p, err := e.Paths()
			if err != nil {
				return err
			}
			// One engine goroutine owns all live state, so the daemon's work
			// is serial; with one P, handing a request from the socket to the
			// engine costs no thread wake-ups (docs/benchmarks.md).
			// GOMAXPROCS in the environment overrides it.
			if os.Getenv("GOMAXPROCS") == "" {
				runtime.GOMAXPROCS(1)
			}
			// A resident daemon with a small heap: collect at half the
			// default growth, trading a little CPU in bursts for a smaller
			// footprint (docs/benchmarks.md, P5). GOGC overrides it.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(50)
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			if err := examples.InstallSample(p); err != nil {
				log.Warn("install sample job file", "err", err)
			}
			return host.RunDaemon(c.Context, host.DaemonOptions{Paths: p, Logger: log, Store: retentionOptions(c),
				Engine:  host.EngineOptions{MaxRuns: c.Int("max-runs"), LuaTimeout: c.Duration("lua-timeout")},
				Backend: clusterBackend(c)})
		},
	}
}

// engineFlags bound how many jobs have a process at once and how long a
// call into Lua may take; `daemon start` and `daemon restart` pass them on
// to the daemon they start.
func engineFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "max-runs", Value: host.DefaultMaxRuns,
			Usage: "run at most `N` jobs at once; the runs due beyond them wait in a queue, in serial order"},
		&cli.DurationFlag{Name: "lua-timeout", Value: luaapi.DefaultTimeout,
			Usage: "stop top-level code, a condition, pre, post, on_load or on_unload after `DURATION` (a runaway loop)"},
	}
}

func checkEngineFlags(c *cli.Context) error {
	if n := c.Int("max-runs"); n < 1 {
		return usageErrorf("--max-runs: want at least 1, not %d", n)
	}
	if d := c.Duration("lua-timeout"); d <= 0 {
		return usageErrorf("--lua-timeout: want a positive duration, not %v", d)
	}
	return nil
}

// engineArgs are the engine flags given to c, for the daemon `daemon
// start` runs.
func engineArgs(c *cli.Context) []string {
	var args []string
	if c.IsSet("max-runs") {
		args = append(args, "--max-runs="+strconv.Itoa(c.Int("max-runs")))
	}
	if c.IsSet("lua-timeout") {
		args = append(args, "--lua-timeout="+c.Duration("lua-timeout").String())
	}
	return args
}

// daemonArgs are the arguments of the daemon process that `daemon start`
// runs: this program's `daemon run` for the same home.
func daemonArgs(e *env, runArgs []string) []string {
	return append(append(e.homeArgs(), "daemon", "run"), runArgs...)
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
