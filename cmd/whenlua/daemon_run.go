package main

import (
	"log/slog"
	"net"
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
			"that keeps its state in etcd (docs/cluster.md).\n\n" + metricsHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL`: debug, info, warn or error"},
		}, daemonFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return usageErrorf("--log-level: %v", err)
			}
			if err := checkDaemonFlags(c); err != nil {
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
			return host.RunDaemon(c.Context, host.DaemonOptions{Paths: p, Logger: log, Store: retentionOptions(c), MetricsAddr: c.String("metrics"),
				Engine:  host.EngineOptions{MaxRuns: c.Int("max-runs"), LuaTimeout: c.Duration("lua-timeout")},
				Backend: clusterBackend(c)})
		},
	}
}

// metricsHelp describes what --metrics serves: the names and labels of
// the metrics (host/metrics.go).
const metricsHelp = `With --metrics ADDR (off by default) the daemon serves Prometheus metrics
at http://ADDR/metrics, from a registry of its own; the address bound (port 0
picks a free one) is in the daemon log ("metrics served") and in status.
Job labels are those of loaded jobs: a job that leaves (removed, renamed)
takes its series with it.

| metric | type | labels | what |
|---|---|---|---|
| whenlua_runs_started_total | counter | job | runs whose process started |
| whenlua_runs_finished_total | counter | job, result | run attempts that ended; result: success, failure (exit not 0, a signal), timeout, cancelled, refused (by pre), not_started, lost |
| whenlua_run_duration_seconds | histogram | job | how long finished runs' processes ran |
| whenlua_sets_total | counter | origin | sets applied; origin: cli, whisper, load, pre, post, on_silence, other |
| whenlua_condition_evaluation_seconds | histogram | | how long one evaluation of a condition took |
| whenlua_condition_errors_total | counter | job | evaluations whose condition raised an error |
| whenlua_job_file_load_error | gauge | file | 1 while the file's last version failed to load, else 0 |
| whenlua_runs_running | gauge | | runs whose process runs |
| whenlua_runs_queued | gauge | | runs waiting for a slot (--max-runs) |
| whenlua_store_size_bytes | gauge | part | the store's size as badger counts it (badger refreshes its count about once a minute: 0 just after the start); part: lsm, vlog |
| whenlua_job_last_success_timestamp_seconds | gauge | job | when the job's last successful run ended (Unix seconds) |
| whenlua_job_silent | gauge | job | 1 while the job's silence alarm is raised (option expect), else 0 |
| whenlua_cluster_leader | gauge | | with --etcd: 1 while this node leads the cluster, else 0 |
| whenlua_cluster_nodes | gauge | | with --etcd: live nodes of the cluster, as etcd shows them at the scrape |
| whenlua_cluster_terms_total | counter | | with --etcd: times this node was elected leader |
| whenlua_cluster_forwarded_calls_total | counter | result | with --etcd: calls sent on to the leader; result: answered (by the leader, with a result or an error of the call), failed (no leader answered) |

The Go runtime's ` + "`go_*`" + ` and the process's ` + "`process_*`" + ` metrics are served too.
With --etcd every node serves its whenlua_cluster_* series; the others are
its engine's, served only while it leads, and counted from 0 again in each
of its terms as leader (Prometheus' rate() and increase() take such a reset
as they take a restart); docs/cluster.md.`

// engineFlags bound how many jobs have a process at once and how long a
// call into Lua may take; `daemon start` and `daemon restart` pass them on
// to the daemon they start.
func engineFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "max-runs", Value: host.DefaultMaxRuns,
			Usage: "run at most `N` jobs at once; the runs due beyond them wait in a queue, in serial order"},
		&cli.DurationFlag{Name: "lua-timeout", Value: luaapi.DefaultTimeout,
			Usage: "stop top-level code, a condition, pre, post, on_load or on_unload after `DURATION` (a runaway loop)"},
		&cli.StringFlag{Name: "metrics",
			Usage: "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9090; port 0 picks a free one, shown by status); off when not given"},
	}
}

func checkEngineFlags(c *cli.Context) error {
	if n := c.Int("max-runs"); n < 1 {
		return usageErrorf("--max-runs: want at least 1, not %d", n)
	}
	if d := c.Duration("lua-timeout"); d <= 0 {
		return usageErrorf("--lua-timeout: want a positive duration, not %v", d)
	}
	if a := c.String("metrics"); c.IsSet("metrics") {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return usageErrorf("--metrics: want HOST:PORT such as 127.0.0.1:9090, not %q", a)
		}
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
	if c.IsSet("metrics") {
		args = append(args, "--metrics="+c.String("metrics"))
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
