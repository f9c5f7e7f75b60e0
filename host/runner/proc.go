package runner

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// After the shell exits, how long its output may take to end before the
// rest of its process group is signalled, and how long it is drained after
// the group was sent SIGKILL before reading stops (a process that left the
// group may still hold the pipe).
const (
	exitLinger = 100 * time.Millisecond
	killDrain  = time.Second
)

// Spec is what to run.
type Spec struct {
	Serial  uint64
	Job     string
	Script  string        // shell script; runs after `set -e`
	Shell   string        // the shell that runs the script file; "" means /bin/sh
	Env     []string      // the whole environment, NAME=value
	Timeout time.Duration // 0 = none; on expiry: SIGTERM to the process group, SIGKILL after Grace
}

// Result is how a run ended.
type Result struct {
	Serial     uint64
	PID        int
	Dir        string // the run directory, still present: Proc.Cleanup removes it
	OutputPath string
	Start, End time.Time // End: when the shell exited
	Code       int       // exit code; -1 when killed by a signal
	Signal     string    // "terminated", "killed", ... ("" when exited)
	TimedOut   bool      // the timeout expired and the group was signalled
	Cancelled  bool      // Cancel (or Close) signalled the group
	Output     []byte    // stored output, at most StoredCap bytes
	OutputSize int64     // bytes written in all
}

// Why a run's process group is being terminated.
type reason int

const (
	reasonCancel reason = iota
	reasonTimeout
)

// Proc is one started run. Its methods are safe for concurrent use.
type Proc struct {
	r       *Runner
	spec    Spec
	cmd     *exec.Cmd
	pid     int
	marker  string // MarkerVar=dir, in the environment of every process of the run
	dir     string
	outPath string
	start   time.Time
	out     *output
	pipe    *os.File      // read end of the output pipe; closed by the watcher
	eof     chan struct{} // closed when the reader stops

	mu           sync.Mutex
	reaped       bool // the shell was reaped: its pid (= the group id) may be reused, signal nothing
	terminating  bool
	cancelled    bool
	timedOut     bool
	timeoutTimer *time.Timer
	killTimer    *time.Timer
	killed       chan struct{} // closed when SIGKILL was sent to the group
	rest         []*handle     // the run's processes found by sweeps, to wait for
}

// PID is the shell's pid, which is also the process group id.
func (p *Proc) PID() int { return p.pid }

// Dir is the run directory.
func (p *Proc) Dir() string { return p.dir }

// Cancel sends SIGTERM to the process group, then SIGKILL after Grace. It
// is idempotent, and does nothing once the run has ended or is already
// being terminated (by its timeout, say).
func (p *Proc) Cancel() { p.terminate(reasonCancel) }

// Tail writes what the output holds so far, then follows it until the
// output ends (nil) or ctx is done (ctx.Err()). Several tails may run at
// once; a slow w never blocks the job: bytes dropped from the tail buffer
// before w took them are replaced by an omission marker. Tail works after
// the run ended too, until Cleanup.
func (p *Proc) Tail(ctx context.Context, w io.Writer) error {
	return p.out.follow(ctx, w)
}

// Cleanup closes the output file and removes the run directory. Call it
// after done; it does not stop the process.
func (p *Proc) Cleanup() error {
	err := p.out.close()
	return errors.Join(err, os.RemoveAll(p.dir))
}

func (p *Proc) terminate(why reason) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped || p.terminating {
		return
	}
	switch why {
	case reasonCancel:
		p.cancelled = true
	case reasonTimeout:
		p.timedOut = true
	}
	p.terminateLocked(true)
}

// terminateLocked sends SIGTERM (and SIGCONT, so that a stopped process
// gets it now) to the process group, arms the SIGKILL that follows after
// Grace, and, when sweep is set, has the other processes of the run found
// and sent the same. p.mu is held and the shell is not reaped.
func (p *Proc) terminateLocked(sweep bool) {
	p.terminating = true
	p.signalLocked(syscall.SIGTERM)
	p.signalLocked(syscall.SIGCONT)
	if sweep {
		go p.sweep(!p.reaped, syscall.SIGTERM, syscall.SIGCONT)
	}
	p.killTimer = time.AfterFunc(p.r.opts.Grace, p.kill)
}

func (p *Proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped { // else the group id may be another's now
		p.signalLocked(syscall.SIGKILL)
	}
	// What was killed gets killDrain to go; a wait on it stops then.
	drain := time.Now().Add(killDrain)
	for _, h := range p.rest {
		h.signal(syscall.SIGKILL)
		h.setDeadline(drain)
	}
	go p.sweep(!p.reaped, syscall.SIGKILL)
	close(p.killed)
}

// testHookSweep, when set by a test, is called by each sweep before and
// after it reads /proc. Atomic: sweeps of runs that a test left behind may
// still read it while the next test sets it.
var testHookSweep atomic.Pointer[func(p *Proc, sigs []syscall.Signal, scanned bool)]

// sweep finds the processes of the run, also those that left its process
// group (setsid), and sends them sigs; they are kept in p.rest to be waited
// for and killed. It runs without p.mu while it reads /proc: many runs
// cancelled at once share the reading. Once the run is being killed, it
// sends SIGKILL instead: a process that kill's own sweep did not find (one
// forked after that sweep read /proc) must not be left with SIGTERM alone
// and no deadline, to be waited for forever.
func (p *Proc) sweep(ownGroup bool, sigs ...syscall.Signal) {
	hook := testHookSweep.Load()
	if hook != nil {
		(*hook)(p, sigs, false)
	}
	found := findRun(p.dir, p.pid, ownGroup)
	if hook != nil {
		(*hook)(p, sigs, true)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.killed:
		sigs = []syscall.Signal{syscall.SIGKILL}
	default:
	}
	for _, h := range found {
		for _, sig := range sigs {
			if err := h.signal(sig); err != nil {
				p.r.opts.Logger.Warn("signal run", "job", p.spec.Job, "serial", p.spec.Serial, "pid", h.pid, "signal", sig.String(), "err", err)
			}
		}
		if sigs[0] == syscall.SIGKILL {
			h.setDeadline(time.Now().Add(killDrain))
		}
	}
	if p.reaped {
		for _, h := range found {
			h.close()
		}
		return
	}
	p.rest = append(p.rest, found...)
}

// signalLocked signals the whole process group. p.mu is held and the shell
// is not reaped: while it exists, even as a zombie, the group id cannot be
// taken by another process.
func (p *Proc) signalLocked(sig syscall.Signal) {
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		p.r.opts.Logger.Warn("signal run", "job", p.spec.Job, "serial", p.spec.Serial, "pgid", p.pid, "signal", sig.String(), "err", err)
	}
}

// read copies the pipe into the output until EOF or the read deadline.
func (p *Proc) read() {
	defer close(p.eof)
	buf := make([]byte, 64<<10)
	for {
		n, err := p.pipe.Read(buf)
		if n > 0 {
			p.out.write(buf[:n])
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
				p.r.opts.Logger.Warn("read run output", "job", p.spec.Job, "serial", p.spec.Serial, "err", err)
			}
			return
		}
	}
}

// watch waits for the shell to exit and the output to end, stops what is
// left of the run, reaps the shell and reports the run.
func (p *Proc) watch(done func(Result)) {
	waitExited(p.pid)
	end := time.Now()

	select {
	case <-p.eof:
	case <-time.After(exitLinger):
	}
	// Nothing of a run outlives it: what is still running (in the group,
	// or escaped from it) gets SIGTERM, then SIGKILL after Grace.
	p.mu.Lock()
	if !p.terminating {
		p.terminateLocked(false)
	}
	p.mu.Unlock()
	p.sweep(true, syscall.SIGTERM, syscall.SIGCONT)
	p.mu.Lock()
	rest := p.rest
	p.mu.Unlock()
	for _, h := range rest {
		h.wait()
	}
	select {
	case <-p.eof:
	case <-p.killed:
		select {
		case <-p.eof:
		case <-time.After(killDrain):
			p.pipe.SetReadDeadline(time.Now())
			<-p.eof
		}
	}
	p.pipe.Close()

	p.mu.Lock()
	p.reaped = true
	if p.timeoutTimer != nil {
		p.timeoutTimer.Stop()
	}
	if p.killTimer != nil {
		p.killTimer.Stop()
	}
	cancelled, timedOut := p.cancelled, p.timedOut
	for _, h := range p.rest {
		h.close()
	}
	p.rest = nil
	p.mu.Unlock()
	if err := p.cmd.Wait(); err != nil && p.cmd.ProcessState == nil {
		p.r.opts.Logger.Warn("wait for run", "job", p.spec.Job, "serial", p.spec.Serial, "pid", p.pid, "err", err)
	}

	res := Result{
		Serial:     p.spec.Serial,
		PID:        p.pid,
		Dir:        p.dir,
		OutputPath: p.outPath,
		Start:      p.start,
		End:        end,
		TimedOut:   timedOut,
		Cancelled:  cancelled,
	}
	res.Code, res.Signal = exitStatus(p.cmd.ProcessState)
	res.Output, res.OutputSize = p.out.finish(p.r.opts.StoredCap)
	p.r.opts.Logger.Debug("run ended", "job", p.spec.Job, "serial", p.spec.Serial, "pid", p.pid,
		"code", res.Code, "signal", res.Signal, "timed_out", timedOut, "cancelled", cancelled, "output_size", res.OutputSize)

	p.r.finished(p, true)
	defer p.r.finished(p, false)
	done(res)
}

func exitStatus(ps *os.ProcessState) (code int, signal string) {
	if ps == nil {
		return -1, ""
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal().String()
	}
	return ps.ExitCode(), ""
}
