package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host/runner"
)

// Executor runs the processes of the runs the engine committed. The
// engine's own (nil EngineOptions.Executor) runs them on this machine; a
// cluster's leader hands each to the node that claims it.
type Executor interface {
	// Start starts the run of spec where on says (a job's on option) and
	// returns at once. ev.Done is called once, from any goroutine, when the
	// run ended; ev.Started when the executor learns later where the
	// process runs (a process on another node).
	Start(spec runner.Spec, on string, ev ExecEvents) (Process, error)
	// Adopt takes over a run an earlier engine recorded running when it
	// may still run somewhere (a cluster node holds its claim, or its end
	// is recorded but not yet its record): as Start, without starting it.
	// A nil Process means nothing runs it: it is lost, for the reason
	// given ("" for the engine's own words).
	Adopt(rec whenlua.Run, ev ExecEvents) (Process, string)
	// StopStray stops what is left of a run recorded lost on this machine
	// (the process group pgid, the processes marked with dir); it returns
	// how many it stopped.
	StopStray(dir string, pgid int) int
	// Close stops the executor. The engine's own stops every process
	// (SIGTERM, then SIGKILL after the grace) and reports each end before
	// it returns; a cluster's leaves them to their nodes and the next
	// leader.
	Close(ctx context.Context) error
}

// ExecEvents are how an Executor reports a run.
type ExecEvents struct {
	Started func(pid int, dir, node string)
	Done    func(Ended)
}

// Process is one run an Executor started or adopted.
type Process interface {
	PID() int    // the shell's pid; 0 while not known (on another node)
	Dir() string // its run directory, on the node that runs it
	// Cancel asks for the run to stop: SIGTERM, then SIGKILL after the
	// grace; a run that no node claimed yet ends at once, not started.
	Cancel()
	// Tail writes its output so far and follows it until it ends; it
	// returns an error wrapping os.ErrClosed once the output is gone (the
	// run's record then holds it).
	Tail(ctx context.Context, w io.Writer) error
	// Cleanup removes what is left of the run once its end is committed.
	Cleanup() error
}

// Ended is how a run ended, as its Executor reports it.
type Ended struct {
	runner.Result
	Node string // the node that ran it ("" on a single daemon)
	// Stopped: it was cancelled because the daemon that ran it stopped.
	Stopped bool
	// NotStarted, when set, says why its process never started; Lost, why
	// nobody knows how it ended (its node died while it ran).
	NotStarted string
	Lost       string
}

// localExecutor runs every process on this machine.
type localExecutor struct{ r *runner.Runner }

// newLocalExecutor returns the engine's own executor.
func newLocalExecutor(r *runner.Runner) *localExecutor { return &localExecutor{r: r} }

func (x *localExecutor) Start(spec runner.Spec, _ string, ev ExecEvents) (Process, error) {
	p, err := x.r.Start(spec, func(res runner.Result) { ev.Done(Ended{Result: res}) })
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Adopt adopts nothing: a run left running when this daemon stopped ran
// under the daemon that is gone.
func (x *localExecutor) Adopt(whenlua.Run, ExecEvents) (Process, string) { return nil, "" }

func (x *localExecutor) StopStray(dir string, pgid int) int { return x.r.StopStray(dir, pgid) }

func (x *localExecutor) Close(ctx context.Context) error { return x.r.Close(ctx) }

// RemoveLeftoverRuns removes every run directory under dir: called when
// no run of this machine's runner is going on (a daemon or a cluster node
// that starts).
func RemoveLeftoverRuns(dir string, warn func(msg string, args ...any)) {
	entries, _ := os.ReadDir(dir)
	for _, de := range entries {
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
			warn("remove leftover run directory", "dir", de.Name(), "err", err)
		}
	}
}

// NoteLateEnd adds to the stored record of a run already recorded lost
// what its node reported once it came back: the end that came too late to
// count (its claim had lapsed). The record keeps its state; its error says
// how the run ended, and its output is kept when none was. A run recorded
// otherwise (its end came in time, and was reported again) is left alone.
func (e *Engine) NoteLateEnd(ctx context.Context, res Ended) error {
	var err error
	derr := e.do(ctx, func() {
		var rec whenlua.Run
		if rec, err = e.store.Run(res.Serial); err != nil {
			return
		}
		switch rec.State {
		case whenlua.RunRunning, whenlua.RunQueued:
			err = fmt.Errorf("%w: run %d is still recorded %s", whenlua.ErrConflict, res.Serial, rec.State)
			return
		case whenlua.RunLost:
		default:
			return // its end was taken in time: a report repeated after a lost reply
		}
		if strings.Contains(rec.Error, "reported its end late") {
			return // noted already, by an earlier leader
		}
		how := fmt.Sprintf("exit code %d", res.Code)
		if res.Signal != "" {
			how = "signal " + res.Signal
		}
		rec.Error = strings.TrimPrefix(fmt.Sprintf("%s; node %s reported its end late, refused: %s after %v",
			rec.Error, res.Node, how, res.End.Sub(res.Start).Round(time.Millisecond)), "; ")
		if len(rec.Output) == 0 {
			rec.Output, rec.OutputSize = res.Output, res.OutputSize
		}
		e.st.addRun(rec)
		e.st.e.log.Warn("late end of a run refused", "job", rec.Job, "serial", rec.Serial, "on", res.Node, "code", res.Code)
	})
	return errors.Join(derr, err)
}
