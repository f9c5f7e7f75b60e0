// Command whenlua-daemon is whenlua's daemon: `whenlua daemon run` replaces
// itself with it, and `whenlua daemon start` starts it detached. It is a
// program of its own so that the commands a user types (set, get, ...) do
// not load the store, the engine and their libraries at every start.
//
//	whenlua-daemon [--home DIR] run [--log-level LEVEL] [--max-runs N] [--history-keep N] [--history-max-age DURATION] [--runs-keep N] [--recover]
//
// The flags are those of `whenlua daemon run` (docs/cli.md), which checks
// them before it runs this program.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/examples"
	"github.com/whenlua/whenlua/host"
	"github.com/whenlua/whenlua/persist"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "whenlua: %s\n", strings.Join(strings.Fields(err.Error()), " "))
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad command line: exit status 2.
type usageError struct{ error }

const usage = "usage: whenlua-daemon [--home DIR] run [--log-level LEVEL] [--max-runs N] [--history-keep N] [--history-max-age DURATION] [--runs-keep N] [--recover]"

// run parses args and runs the daemon until ctx is done or it is asked to
// stop; its log goes to logw.
func run(ctx context.Context, args []string, logw io.Writer) error {
	global := flag.NewFlagSet("whenlua-daemon", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	home := global.String("home", "", "the home `DIR`")
	if err := global.Parse(args); err != nil {
		return usageError{fmt.Errorf("%v (%s)", err, usage)}
	}
	if global.NArg() == 0 || global.Arg(0) != "run" {
		return usageError{errors.New(usage)}
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	level := fs.String("log-level", "info", "")
	opts := persist.Options{HistoryKeep: persist.DefaultHistoryKeep, RunsKeep: persist.DefaultRunsKeep}
	fs.IntVar(&opts.HistoryKeep, "history-keep", opts.HistoryKeep, "")
	fs.DurationVar(&opts.HistoryMaxAge, "history-max-age", 0, "")
	fs.IntVar(&opts.RunsKeep, "runs-keep", opts.RunsKeep, "")
	fs.BoolVar(&opts.Recover, "recover", false, "")
	maxRuns := fs.Int("max-runs", host.DefaultMaxRuns, "")
	if err := fs.Parse(global.Args()[1:]); err != nil {
		return usageError{fmt.Errorf("%v (%s)", err, usage)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (%s)", fs.Arg(0), usage)}
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return usageError{fmt.Errorf("--log-level: %v", err)}
	}
	if opts.HistoryKeep < 1 || opts.RunsKeep < 1 || opts.HistoryMaxAge < 0 || *maxRuns < 1 {
		return usageError{errors.New("--history-keep, --runs-keep and --max-runs want at least 1, --history-max-age 0 or more")}
	}
	p, err := whenlua.ResolvePaths(*home)
	if err != nil {
		return err
	}
	// One engine goroutine owns all live state, so the daemon's work is
	// serial; with one P, handing a request from the socket to the engine
	// and to the store's writer costs no thread wake-ups (see
	// docs/benchmarks.md). GOMAXPROCS in the environment overrides it.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// A resident daemon with a small heap: collect at half the default
	// growth, trading a little CPU in bursts for a smaller footprint
	// (docs/benchmarks.md, P5). GOGC overrides it.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: lv}))
	if err := examples.InstallSample(p); err != nil {
		log.Warn("install sample job file", "err", err)
	}
	return host.RunDaemon(ctx, host.DaemonOptions{Paths: p, Logger: log, Store: opts,
		Engine: host.EngineOptions{MaxRuns: *maxRuns}})
}
