// Package runner starts job scripts as processes and watches them (SPEC §3):
// each run gets a fresh directory as its cwd, its script in a file that
// starts with `set -e`, its own process group, and its stdout and stderr
// captured, within caps, to output.txt in that directory.
//
// A Runner owns its processes and the goroutines that wait for them; its
// methods are safe on any goroutine (in the daemon, the engine's calls
// them), and each run's done callback comes on a goroutine of the runner.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// MarkerVar is set in the environment of every run to the run's directory.
// It is how the processes of a run are found when they have left its
// process group (setsid), and after a restart of the daemon (StopStray).
const MarkerVar = "WHENLUA_RUN"

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
	strays  sync.WaitGroup     // StopStray's SIGKILLs still to come
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
// runner, after the shell has exited and the rest of the run is gone:
// whatever of it still runs then (in its process group, or, on Linux,
// escaped from it but carrying MarkerVar) gets SIGTERM, SIGKILL after
// Grace, and the run is reported once those have ended and its output has
// ended (or a short drain after the SIGKILL). No process of a run outlives
// it, as in a systemd service.
//
// The environment is spec.Env and MarkerVar; stdin is /dev/null.
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
	marker := MarkerVar + "=" + dir
	cmd.Env = make([]string, 0, len(spec.Env)+1)
	for _, kv := range spec.Env {
		if !strings.HasPrefix(kv, MarkerVar+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, marker)
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
		marker:  marker,
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

// StopStray stops the processes left by a run of an earlier daemon, found
// by the run's directory in their MarkerVar (Linux only; elsewhere it finds
// nothing), with their descendants, and the members of process group pgid
// when one of them carries the marker (so a group id taken by another
// process since is never signalled). They get SIGTERM at once, and SIGKILL
// after Grace in the background; Close waits for that. It returns how many
// processes it found.
func (r *Runner) StopStray(dir string, pgid int) int {
	found := findRun(dir, pgid, false)
	if len(found) == 0 {
		return 0
	}
	for _, h := range found {
		h.signal(syscall.SIGTERM)
		h.signal(syscall.SIGCONT)
	}
	r.strays.Add(1)
	go func() {
		defer r.strays.Done()
		deadline := time.Now().Add(r.opts.Grace)
		for _, h := range found {
			h.setDeadline(deadline)
			if h.wait() != nil {
				h.signal(syscall.SIGKILL)
			}
			h.close()
		}
		r.opts.Logger.Debug("stray processes stopped", "dir", dir, "processes", len(found))
	}()
	return len(found)
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
		return r.waitStrays(ctx)
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
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.waitStrays(ctx)
}

func (r *Runner) waitStrays(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.strays.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
