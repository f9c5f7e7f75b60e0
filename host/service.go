package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/whenlua/whenlua"
)

var _ whenlua.Service = (*Engine)(nil)

// Get implements whenlua.Service. JOBSERIAL reads as the last serial given
// to a run (unset before the first), as whenjobs' JOBSERIAL variable does;
// only the daemon sets it.
func (e *Engine) Get(ctx context.Context, name string) (whenlua.Value, error) {
	if err := whenlua.ValidateName(name); err != nil && name != serialVar {
		return whenlua.Nil, err
	}
	var v whenlua.Value
	err := e.do(ctx, func() {
		if name == serialVar {
			v = e.st.serialValue()
		} else {
			v = e.st.vars[name]
		}
	})
	return v, err
}

// Vars implements whenlua.Service. It lists the variables that can be set:
// not JOBSERIAL, which Get reads.
func (e *Engine) Vars(ctx context.Context) (map[string]whenlua.Value, error) {
	var m map[string]whenlua.Value
	err := e.do(ctx, func() { m = maps.Clone(e.st.vars) })
	return m, err
}

// serialVar is the read-only variable holding the last JOBSERIAL.
const serialVar = "JOBSERIAL"

// serialValue is the last serial given to a run, nil before the first.
func (st *state) serialValue() whenlua.Value {
	if st.serial == 0 {
		return whenlua.Nil
	}
	return whenlua.Int(int64(st.serial))
}

// History implements whenlua.Service. It reads the store directly: badger
// serves reads concurrently and every acknowledged set is committed.
func (e *Engine) History(ctx context.Context, name string, n int) ([]whenlua.Version, error) {
	if err := whenlua.ValidateName(name); err != nil {
		return nil, err
	}
	return e.store.History(name, n)
}

// Names implements whenlua.Service.
func (e *Engine) Names(ctx context.Context) ([]whenlua.JobInfo, error) {
	var out []whenlua.JobInfo
	err := e.do(ctx, func() {
		for _, j := range e.st.jobs {
			out = append(out, jobInfo(j))
		}
	})
	sort.Slice(out, func(a, b int) bool { return whenlua.JobNameLess(out[a].Name, out[b].Name) })
	return out, err
}

func jobInfo(j *job) whenlua.JobInfo {
	ji := whenlua.JobInfo{Name: j.name, File: j.gen.path, Line: j.lj.Line, Running: j.running}
	if j.isWhen() {
		ji.Kind, ji.Cond = "when", j.lj.Cond
	} else {
		ji.Kind, ji.Zone, ji.Next = j.lj.Kind.String(), j.lj.ZoneName(), j.nextRun
		if j.lj.Cron != nil {
			ji.Cron = j.lj.Cron.String()
		} else {
			ji.Period = j.lj.Period.String()
		}
	}
	return ji
}

// Jobs implements whenlua.Service.
func (e *Engine) Jobs(ctx context.Context) ([]whenlua.Run, error) {
	var out []whenlua.Run
	err := e.do(ctx, func() { out = e.st.runningList() })
	return out, err
}

// Start implements whenlua.Service.
func (e *Engine) Start(ctx context.Context, name string) (whenlua.Run, error) {
	var rec whenlua.Run
	var err error
	derr := e.do(ctx, func() {
		j := e.st.jobs[name]
		if j == nil {
			err = fmt.Errorf("%w: no job named %q", whenlua.ErrNotFound, name)
			return
		}
		rec = e.st.startRun(j, "start")
		e.st.traceRun(j, runTrigger("start"), rec)
		r := e.st.running[rec.Serial]
		e.st.afterCommit(func(cerr error) {
			if cerr != nil {
				err = fmt.Errorf("run of %s not started: %w", name, cerr)
			}
		})
		e.st.afterLaunch(func() {
			if r != nil {
				rec = r.rec // a launch that failed made it RunFailed: see below
			}
		})
	})
	if derr != nil {
		return rec, derr
	}
	if err == nil && rec.State != whenlua.RunRunning && rec.State != whenlua.RunQueued {
		err = fmt.Errorf("%w: run %d of %s not started: %s", whenlua.ErrConflict, rec.Serial, name, rec.Error)
	}
	return rec, err
}

// Cancel implements whenlua.Service.
func (e *Engine) Cancel(ctx context.Context, serial uint64) error {
	var err error
	derr := e.do(ctx, func() {
		r := e.st.running[serial]
		switch {
		case r != nil && r.rec.State == whenlua.RunQueued:
			e.st.cancelQueued(r, "cancelled before it started")
		case r == nil || r.proc == nil:
			err = fmt.Errorf("%w: no running job with serial %d", whenlua.ErrNotFound, serial)
		default:
			r.proc.Cancel()
		}
	})
	if derr != nil {
		return derr
	}
	return err
}

// Tail implements whenlua.Service.
func (e *Engine) Tail(ctx context.Context, serial uint64, w io.Writer) error {
	var proc Process
	var started chan struct{}
	get := func() {
		if r := e.st.running[serial]; r != nil {
			proc, started = r.proc, r.started
		}
	}
	if err := e.do(ctx, get); err != nil {
		return err
	}
	if proc == nil && started != nil {
		// Queued: follow it once it starts.
		select {
		case <-started:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := e.do(ctx, get); err != nil {
			return err
		}
	}
	if proc != nil {
		err := proc.Tail(ctx, w)
		if !errors.Is(err, os.ErrClosed) {
			return err
		}
		// The run ended and was cleaned up before the tail began: its
		// stored output is the whole of it.
	}
	rec, err := e.store.Run(serial)
	if err != nil {
		return err
	}
	_, err = w.Write(rec.Output)
	return err
}

// Log implements whenlua.Service.
func (e *Engine) Log(ctx context.Context, job string, n int) ([]whenlua.Run, error) {
	// Running runs are in the store too: read enough to skip them.
	limit := 0
	if n > 0 {
		var running int
		if err := e.do(ctx, func() { running = len(e.st.running) }); err != nil {
			return nil, err
		}
		limit = n + running
	}
	runs, err := e.store.Runs(job, limit)
	if err != nil {
		return nil, err
	}
	out := runs[:0]
	for _, r := range runs {
		if r.State != whenlua.RunRunning && r.State != whenlua.RunQueued {
			out = append(out, r)
			if n > 0 && len(out) == n {
				break
			}
		}
	}
	return out, nil
}

// Run implements whenlua.Service.
func (e *Engine) Run(ctx context.Context, serial uint64) (whenlua.Run, error) {
	return e.store.Run(serial)
}

// Status implements whenlua.Service.
func (e *Engine) Status(ctx context.Context) (whenlua.Status, error) {
	var s whenlua.Status
	err := e.do(ctx, func() { s = e.st.status() })
	return s, err
}

func (st *state) status() whenlua.Status {
	s := whenlua.Status{
		JobsDir:  st.e.opts.Paths.JobsDir,
		StateDir: st.e.opts.Paths.StateDir,
		Files:    st.fileStatus(),
		Running:  len(st.running) - len(st.runq.waiting),
		Queued:   len(st.runq.waiting),
		Compiles: st.compiles,
	}
	for _, j := range st.sched.h {
		s.Next = append(s.Next, jobInfo(j))
	}
	s.Pending = st.pendingHolds()
	s.Silent = st.silentList()
	for _, r := range st.sched.retries {
		s.Retries = append(s.Retries, whenlua.PendingRetry{Job: r.job, Attempt: r.attempt, FirstSerial: r.first, At: r.at})
	}
	sort.Slice(s.Next, func(a, b int) bool {
		if !s.Next[a].Next.Equal(s.Next[b].Next) {
			return s.Next[a].Next.Before(s.Next[b].Next)
		}
		return whenlua.JobNameLess(s.Next[a].Name, s.Next[b].Name)
	})
	for job, msg := range st.condErrs {
		s.CondErrors = append(s.CondErrors, job+": "+msg)
	}
	sort.Slice(s.CondErrors, func(a, b int) bool {
		ja, _, _ := strings.Cut(s.CondErrors[a], ": ")
		jb, _, _ := strings.Cut(s.CondErrors[b], ": ")
		return whenlua.JobNameLess(ja, jb)
	})
	return s
}

// Reload implements whenlua.Service. A forced reload loads the files it
// names again, or every job file, even those whose content did not change.
func (e *Engine) Reload(ctx context.Context, req whenlua.ReloadRequest) (whenlua.Status, error) {
	if err := req.Validate(); err != nil {
		return whenlua.Status{}, err
	}
	force := map[string]bool{}
	for _, path := range req.Files {
		if filepath.Dir(path) != e.opts.Paths.JobsDir || !IsJobFile(filepath.Base(path)) {
			return whenlua.Status{}, fmt.Errorf("%w: %s is not a job file of %s", whenlua.ErrInvalid, path, e.opts.Paths.JobsDir)
		}
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			return whenlua.Status{}, fmt.Errorf("%w: no job file %s", whenlua.ErrNotFound, path)
		}
		force[path] = true
	}
	var s whenlua.Status
	var fs forceSet
	if req.Force {
		fs = forceSet{all: len(force) == 0, files: force}
	}
	if err := e.loadFiles(ctx, fs, whenlua.TriggerReload); err != nil {
		return s, err
	}
	err := e.do(ctx, func() {
		e.st.resumeSuspended()
		s = e.st.status()
	})
	return s, err
}
