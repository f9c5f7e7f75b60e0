// Package runner starts job scripts as processes and watches them (SPEC §3):
// each run gets a fresh directory as its cwd, its script in a file that
// starts with `set -e`, its own process group, and its stdout and stderr
// captured, within caps, to output.txt in that directory.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultGrace     = 5 * time.Second
	DefaultHeadCap   = 1 << 20
	DefaultTailCap   = 256 << 10
	DefaultStoredCap = 128 << 10
)

// File names inside a run directory.
const (
	ScriptName = "script"
	OutputName = "output.txt"
)

// ErrClosed is returned by Start once Close has been called.
var ErrClosed = errors.New("runner closed")

// Options configure a Runner. Zero fields take the defaults above.
type Options struct {
	BaseDir string        // where run directories are created (created 0700 if missing)
	Grace   time.Duration // SIGTERM -> SIGKILL grace
	// HeadCap bytes of output go to output.txt as they come; of the rest
	// only the last TailCap bytes are kept (in memory) and appended after a
	// marker when the run ends. StoredCap caps Result.Output.
	HeadCap, TailCap, StoredCap int
	Logger                      *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.HeadCap <= 0 {
		o.HeadCap = DefaultHeadCap
	}
	if o.TailCap <= 0 {
		o.TailCap = DefaultTailCap
	}
	if o.StoredCap <= 0 {
		o.StoredCap = DefaultStoredCap
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Runner starts runs and keeps track of them until their done callback has
// returned. Its methods are safe for concurrent use.
type Runner struct {
	opts Options

	// startMu is held for reading by every Start in progress and for
	// writing by Close while it sets closed, so no run starts after Close
	// has begun waiting.
	startMu sync.RWMutex
	closed  bool

	mu      sync.Mutex
	procs   map[*Proc]struct{} // runs whose done callback has not been called
	pending int                // runs whose done callback has not returned
	idle    chan struct{}      // made by Close, closed when pending drops to 0
}

// afterStart, when set, is called right after a process started; tests
// delay the runner there, as a busy machine can.
var afterStart func()

// New returns a Runner; it starts nothing.
func New(opts Options) *Runner {
	return &Runner{opts: opts.withDefaults(), procs: make(map[*Proc]struct{})}
}

// Start creates the run directory, writes the script, starts the process
// and returns at once. done is called exactly once, from a goroutine of the
// runner, after the process has exited and its output has ended: when no
// process holds the output pipe any more, or, when one still does after the
// shell exited, after the rest of the process group was signalled (SIGTERM,
// SIGKILL after Grace) and a short drain. Processes of the run that
// redirected their output elsewhere are left running, as under cron.
//
// The environment is exactly spec.Env (empty when nil); stdin is /dev/null.
// On error nothing is left behind and done is not called.
func (r *Runner) Start(spec Spec, done func(Result)) (*Proc, error) {
	r.startMu.RLock()
	defer r.startMu.RUnlock()
	if r.closed {
		return nil, ErrClosed
	}
	p, err := r.start(spec)
	if err != nil {
		return nil, fmt.Errorf("start job %s (serial %d): %w", spec.Job, spec.Serial, err)
	}
	r.mu.Lock()
	r.procs[p] = struct{}{}
	r.pending++
	r.mu.Unlock()
	r.opts.Logger.Debug("run started", "job", spec.Job, "serial", spec.Serial, "pid", p.pid, "dir", p.dir)
	go p.watch(done)
	return p, nil
}

func (r *Runner) start(spec Spec) (p *Proc, err error) {
	if err := os.MkdirAll(r.opts.BaseDir, 0o700); err != nil {
		return nil, fmt.Errorf("create run base directory: %w", err)
	}
	dir, err := os.MkdirTemp(r.opts.BaseDir, fmt.Sprintf("run-%d-", spec.Serial))
	if err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range closers {
				c()
			}
			os.RemoveAll(dir)
		}
	}()

	script := filepath.Join(dir, ScriptName)
	if err := os.WriteFile(script, []byte("set -e\n"+spec.Script+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write script: %w", err)
	}
	outPath := filepath.Join(dir, OutputName)
	file, err := os.OpenFile(outPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create output file: %w", err)
	}
	closers = append(closers, file.Close)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create output pipe: %w", err)
	}
	closers = append(closers, pr.Close)
	defer pw.Close() // the child has its copy

	shell := spec.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.Command(shell, script)
	cmd.Dir = dir
	cmd.Env = spec.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The start is taken before the process starts: on a busy machine a
	// short script can be over before cmd.Start returns.
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if afterStart != nil {
		afterStart()
	}
	p = &Proc{
		r:       r,
		spec:    spec,
		cmd:     cmd,
		pid:     cmd.Process.Pid,
		dir:     dir,
		outPath: outPath,
		start:   started,
		out:     newOutput(file, r.opts.HeadCap, r.opts.TailCap, r.opts.Logger),
		pipe:    pr,
		eof:     make(chan struct{}),
		killed:  make(chan struct{}),
	}
	go p.read()
	if spec.Timeout > 0 {
		p.mu.Lock()
		p.timeoutTimer = time.AfterFunc(spec.Timeout, func() { p.terminate(reasonTimeout) })
		p.mu.Unlock()
	}
	return p, nil
}

// finished is called by a run's watcher: before done (removed) and after it
// returned (!removed).
func (r *Runner) finished(p *Proc, removed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if removed {
		delete(r.procs, p)
		return
	}
	r.pending--
	if r.pending == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
}

// Running returns how many runs have started and not yet been reported
// (a done callback does not count its own run).
func (r *Runner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.procs)
}

// Close makes further Starts fail, cancels every running process (SIGTERM
// to its group, SIGKILL after Grace) and waits until every done callback
// has returned, or ctx is done (it then returns ctx.Err(), and the runs go
// on being stopped and reported in the background). A done callback must
// not call Close.
func (r *Runner) Close(ctx context.Context) error {
	r.startMu.Lock()
	r.closed = true
	r.startMu.Unlock()

	r.mu.Lock()
	procs := make([]*Proc, 0, len(r.procs))
	for p := range r.procs {
		procs = append(procs, p)
	}
	if r.pending == 0 {
		r.mu.Unlock()
		return nil
	}
	if r.idle == nil {
		r.idle = make(chan struct{})
	}
	idle := r.idle
	r.mu.Unlock()

	for _, p := range procs {
		p.Cancel()
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
