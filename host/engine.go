// Package host is the daemon: the engine that owns the live state, the
// scheduler of every-jobs, the watcher of the jobs directory, and the socket
// server in front of them. The engine goroutine (Engine.run) alone touches
// the variables, the jobs and every Lua state; the server's handlers, the
// watcher and the runner's callbacks hand it work through Engine.do and
// its channels, from any goroutine.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host/runner"
)

// EngineOptions configures an Engine.
type EngineOptions struct {
	Store  whenlua.Store
	Paths  whenlua.Paths
	Logger *slog.Logger
	Clock  Clock // nil: the real clock

	// LuaTimeout bounds top-level code, each condition, pre and post (default 2s).
	LuaTimeout time.Duration
	// LuaMemoryLimit bounds how much each of those calls may grow the
	// daemon's live heap, in bytes (luaapi.DefaultMemoryLimit when 0).
	LuaMemoryLimit int64
	// Grace is the SIGTERM -> SIGKILL delay for timeouts, cancel and stop (default 5s).
	Grace time.Duration
	// MaxRuns bounds how many runs have a process at once (default
	// DefaultMaxRuns); the others are queued in serial order.
	MaxRuns int
	// Shell runs job scripts (default $SHELL, then /bin/sh).
	Shell string
	// Sendmail is the program mailto() hands messages to (default "sendmail" on PATH).
	Sendmail string
	// PollEvery is the period of the slow rescan of the jobs directory that
	// catches what file events miss (default 30s; <0 disables the watcher).
	// Events are the way edits are seen; the poll is a safety net (a file
	// system without inotify, a lost event) that costs a stat per file.
	PollEvery time.Duration
	// Debounce is how long the watcher waits after the last event (default 150ms).
	Debounce time.Duration
	// Env is the base environment of jobs (default os.Environ()).
	Env []string
	// KeepBoundaries, when nonzero, keys every- and cron-runs by their
	// scheduled time: the engine starts from the latest scheduled time its
	// store recorded a run for, and runs each scheduled time once, in
	// order, those it missed included (not only the latest, as catch_up
	// does), except those older than KeepBoundaries. A cluster's new
	// leader so neither repeats nor drops a boundary of the old one.
	KeepBoundaries time.Duration
	// Executor runs the processes of runs (nil: this machine's, under
	// Paths.RunsDir). A cluster's leader gives its own.
	Executor Executor
	// NoEvalTrace keeps no evaluations for `whenlua why`: only for
	// benchmarks, to measure what keeping them costs.
	NoEvalTrace bool
}

// DefaultMaxRuns is how many runs have a process at once unless
// EngineOptions.MaxRuns says otherwise: plenty for a personal machine, and
// far from the limits on processes and threads that would stop the daemon.
const DefaultMaxRuns = 64

// Engine owns the live state of the daemon: variables, loaded job files,
// when-job snapshots, the dependency index, the schedule and the running
// runs. One goroutine (run) owns all of it and every Lua state; the
// exported methods send it requests and wait for the reply.
type Engine struct {
	opts  EngineOptions
	log   *slog.Logger
	clock Clock
	store whenlua.Store
	exec  Executor

	reqs     chan func()
	sets     chan *setReq
	mail     sync.WaitGroup // mails being handed to sendmail
	mailing  atomic.Int32   // how many: at most maxMailsInFlight
	finished chan Ended
	loader   *loader
	metrics  *metrics

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
	watcher   *watcher

	// Everything below is owned by the run goroutine.
	st *state
}

// NewEngine returns an engine; Open starts it.
func NewEngine(opts EngineOptions) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.LuaTimeout <= 0 {
		opts.LuaTimeout = 2 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 5 * time.Second
	}
	if opts.MaxRuns <= 0 {
		opts.MaxRuns = DefaultMaxRuns
	}
	if opts.Shell == "" {
		opts.Shell = os.Getenv("SHELL")
		if opts.Shell == "" {
			opts.Shell = "/bin/sh"
		}
	}
	if opts.Sendmail == "" {
		opts.Sendmail = "sendmail"
	}
	if opts.PollEvery == 0 {
		opts.PollEvery = 30 * time.Second
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 150 * time.Millisecond
	}
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	return &Engine{
		opts:     opts,
		log:      opts.Logger,
		clock:    opts.Clock,
		store:    opts.Store,
		reqs:     make(chan func(), 1024),
		sets:     make(chan *setReq, 1024),
		finished: make(chan Ended, 64),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		metrics:  newMetrics(),
	}
}

// Open loads the variables and the evaluation state from the store, marks
// runs left in flight by a crash as lost, loads every job file, and starts
// the engine's goroutines.
func (e *Engine) Open(ctx context.Context) error {
	if e.store == nil {
		return errors.New("engine: no store")
	}
	st, err := newState(e)
	if err != nil {
		return err
	}
	e.st = st
	if err := os.MkdirAll(e.opts.Paths.RunsDir, 0o700); err != nil {
		return fmt.Errorf("create runs directory: %w", err)
	}
	e.exec = e.opts.Executor
	if e.exec == nil {
		e.exec = newLocalExecutor(runner.New(runner.Options{BaseDir: e.opts.Paths.RunsDir, Grace: e.opts.Grace, Logger: e.log}))
	}
	lost, err := st.recoverLostRuns()
	if err != nil {
		return err
	}
	// The first load of every job file, here, before the engine goroutine
	// starts: this goroutine owns the state until then.
	e.loader = newLoader(e)
	b := e.loader.scan(loaderHooks{
		get:      func(name string) whenlua.Value { return st.vars[name] },
		requires: st.requiresByFile,
	}, forceSet{})
	st.handle(func() {
		st.loadCause = whenlua.TriggerStart
		defer func() { st.loadCause = "" }()
		st.applyLoad(b)
		st.attachAdopted()
	})
	if len(lost) > 0 {
		st.handle(func() { st.rerunLost(lost) })
	}
	for _, r := range lost {
		st.countFinished(r, resultLost)
	}
	st.leftBeforeStart()
	// Loading leaves the garbage of parsing and compiling every file behind;
	// give it back now rather than keep the daemon's footprint at its peak.
	debug.FreeOSMemory()
	if e.opts.PollEvery > 0 {
		w, err := newWatcher(e)
		if err != nil {
			e.log.Warn("file events unavailable; polling only", "err", err)
		}
		e.watcher = w
	}
	go e.run()
	if e.watcher != nil {
		go e.watcher.run()
	}
	return nil
}

// Close stops the engine: no new run starts; running jobs get SIGTERM, then
// SIGKILL after the grace period, and their runs are recorded; every loaded
// file's on_unload runs; Lua states are closed. The store is left open.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		if e.watcher != nil {
			e.watcher.close()
		}
		close(e.stop)
	})
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrStopped is returned to requests made while or after the engine stops;
// such a request changed nothing.
var ErrStopped = errors.New("the daemon is stopping")

// do runs f on the engine goroutine and waits for it.
func (e *Engine) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	// The reply waits for the step to be committed and its processes
	// started: what f changed is on disk (or undone) before the caller
	// hears of it.
	select {
	case e.reqs <- func() { f(); e.st.afterLaunch(func() { close(ran) }) }:
	case <-e.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-e.done:
		// The loop may have run f just before it ended.
		select {
		case <-ran:
			return nil
		default:
			return ErrStopped
		}
	}
}

// run is the engine goroutine.
func (e *Engine) run() {
	defer close(e.done)
	st := e.st
	var runnerClosed chan struct{}
	stop := e.stop
	for {
		var timerC <-chan time.Time
		if !st.stopping {
			timerC = st.sched.timerC()
		}
		// Records a failed commit left behind are retried even when no
		// request comes.
		var retryC <-chan time.Time
		if st.step.dirty {
			retryC = time.After(time.Second)
		}
		select {
		case <-retryC:
			st.flush()
		case f := <-e.reqs:
			st.handle(f)
		case r := <-e.sets:
			e.applyQueued(r)
		case res := <-e.finished:
			// Runs that ended together are recorded in one commit.
			st.handle(func() {
				st.finish(res)
				for range cap(e.finished) {
					select {
					case res := <-e.finished:
						st.finish(res)
					default:
						return
					}
				}
			})
		case <-timerC:
			st.handle(st.fireDue)
		case <-stop:
			stop = nil // handled once; a closed channel would spin the loop
			st.stopping = true
			st.handle(st.cancelAllQueued)
			runnerClosed = make(chan struct{})
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), e.opts.Grace+10*time.Second)
				defer cancel()
				if err := e.exec.Close(ctx); err != nil {
					e.log.Error("stop running jobs", "err", err)
				}
				close(runnerClosed)
			}()
		case <-runnerClosed:
			// Record the runs whose results are still queued.
		drain:
			for {
				select {
				case res := <-e.finished:
					st.handle(func() { st.finish(res) })
				case r := <-e.sets:
					e.applyQueued(r)
				case f := <-e.reqs:
					st.handle(f)
				default:
					break drain
				}
			}
			st.shutdown()
			e.mail.Wait()
			return
		}
	}
}

// runnerDone is handed to the executor for each run; it hands the end to
// the engine goroutine without ever blocking the executor for long.
func (e *Engine) runnerDone(res Ended) {
	select {
	case e.finished <- res:
	case <-e.done:
	}
}

// execEvents are the events of the run serial, handed to the executor.
func (e *Engine) execEvents(serial uint64) ExecEvents {
	return ExecEvents{
		Done: e.runnerDone,
		Started: func(pid int, dir, node string) {
			// Not waited for on the executor's goroutine: the engine may be
			// waiting on the executor.
			go e.do(context.Background(), func() { e.st.started(serial, pid, dir, node) })
		},
	}
}
