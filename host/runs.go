package host

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host/runner"
	"github.com/whenlua/whenlua/luaapi"
)

// run is a run in flight, from its committed start to its recorded end.
type run struct {
	rec     whenlua.Run
	job     *job
	proc    Process       // nil until launched
	started chan struct{} // closed once its process started, or it ended without one
	queued  bool          // it waited in the queue
}

// runQueue bounds how many runs have a process at once (MaxRuns): the
// others wait, queued in serial order, for a slot. Engine goroutine only.
type runQueue struct {
	slots   int    // runs holding a slot: launching or running
	waiting []*run // queued runs, oldest serial first
}

// unqueue removes r from the queue; it reports whether r was there.
func (q *runQueue) unqueue(r *run) bool {
	for i, w := range q.waiting {
		if w == r {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// startRun consumes a serial, asks the job's pre hook, and, when it agrees,
// records the run as running; its process starts once the step is committed.
func (st *state) startRun(j *job, trigger string) whenlua.Run {
	if st.sim != nil {
		return st.sim.due(j) // a simulation runs nothing and calls no pre
	}
	now := st.e.clock.Now()
	rec := whenlua.Run{Serial: st.nextSerial(), Job: j.name, File: j.gen.path, Trigger: trigger, Start: now, Code: -1}
	if trigger == luaapi.Every.String() || trigger == luaapi.Cron.String() {
		rec.Scheduled, rec.CatchUp = j.fired.at, j.fired.catchUp
	}
	if j.lj.Retry != nil || j.lj.RerunLost {
		rec.Attempt = 1
		if a := j.attempt; a.attempt > 1 {
			rec.Attempt, rec.FirstSerial = a.attempt, a.first
		}
	}
	j.attempt = retry{}
	switch {
	case st.stopping:
		rec.State, rec.Error = whenlua.RunRefused, "the daemon is stopping"
	case j.lj.HasPre:
		ok, reason, err := j.lj.CallPre(luaapi.PreInfo{Serial: rec.Serial, Vars: maps.Clone(st.vars), Running: st.preRunning()})
		st.mayHaveChanged(j.gen)
		switch {
		case err != nil:
			st.e.log.Error("pre failed", "job", j.name, "serial", rec.Serial, "err", err)
			rec.State, rec.Error = whenlua.RunRefused, "pre: "+err.Error()
		case !ok && reason != "":
			rec.State, rec.Error = whenlua.RunRefused, "pre refused: "+reason
		case !ok:
			rec.State, rec.Error = whenlua.RunRefused, "pre refused"
		}
	}
	if rec.State != "" {
		rec.End = now
		st.addRun(rec)
		st.countFinished(rec, resultRefused)
		return rec
	}
	r := &run{rec: rec, job: j, started: make(chan struct{})}
	st.running[rec.Serial] = r
	j.running++
	j.gen.runs++
	st.dequeue() // older runs first, should a slot be free
	if st.runq.slots >= st.e.opts.MaxRuns {
		// Every slot is taken: the run waits for one, in serial order.
		r.queued = true
		r.rec.State, r.rec.Queued = whenlua.RunQueued, now
		st.runq.waiting = append(st.runq.waiting, r)
		st.addRun(r.rec)
		st.afterCommit(func(err error) {
			if err != nil && st.runq.unqueue(r) {
				delete(st.running, r.rec.Serial)
				st.release(r)
			}
		})
		st.e.log.Info("job queued", "job", j.name, "serial", rec.Serial, "running", st.runq.slots)
		return r.rec
	}
	st.claim(r)
	return r.rec
}

// claim gives r a slot: it is recorded as running and its process starts
// once the step is committed.
func (st *state) claim(r *run) {
	st.runq.slots++
	r.rec.State = whenlua.RunRunning
	if r.queued {
		r.rec.Start = st.e.clock.Now() // it starts now, not when it was made due
	}
	st.addRun(r.rec)
	st.step.toStart = append(st.step.toStart, r)
}

// dequeue gives free slots to the oldest queued runs.
func (st *state) dequeue() {
	for !st.stopping && len(st.runq.waiting) > 0 && st.runq.slots < st.e.opts.MaxRuns {
		r := st.runq.waiting[0]
		st.runq.waiting = st.runq.waiting[1:]
		st.claim(r)
	}
}

// cancelQueued records a queued run as cancelled: it never ran.
func (st *state) cancelQueued(r *run, why string) {
	if !st.runq.unqueue(r) {
		return
	}
	delete(st.running, r.rec.Serial)
	r.rec.State, r.rec.Error, r.rec.End = whenlua.RunCancelled, why, st.e.clock.Now()
	st.addFinished(r.rec)
	st.countFinished(r.rec, resultCancelled)
	close(r.started)
	st.release(r)
	st.e.log.Info("queued job cancelled", "job", r.rec.Job, "serial", r.rec.Serial, "why", why)
}

// cancelAllQueued records every queued run as cancelled; the daemon is
// stopping.
func (st *state) cancelAllQueued() {
	for len(st.runq.waiting) > 0 {
		st.cancelQueued(st.runq.waiting[0], "the daemon stopped before it started")
	}
}

// dropRun forgets a run whose start was not committed; one that came
// from the queue goes back to it.
func (st *state) dropRun(r *run) {
	st.runq.slots--
	if r.queued {
		r.rec.State, r.rec.Start = whenlua.RunQueued, r.rec.Queued // it did not start
		i := 0
		for i < len(st.runq.waiting) && st.runq.waiting[i].rec.Serial < r.rec.Serial {
			i++
		}
		st.runq.waiting = append(st.runq.waiting[:i], append([]*run{r}, st.runq.waiting[i:]...)...)
		return
	}
	delete(st.running, r.rec.Serial)
	close(r.started)
	st.release(r)
}

// release gives back what a run held; a retired generation whose last run
// ended is closed here.
func (st *state) release(r *run) {
	if r.job == nil {
		return // adopted from an earlier leader, of a job not loaded here
	}
	r.job.running--
	g := r.job.gen
	g.runs--
	if g.retired && g.runs == 0 {
		st.closeGeneration(g)
	}
}

// launch starts the process of a committed run.
func (st *state) launch(r *run) {
	j := r.job
	spec := runner.Spec{
		Serial:  r.rec.Serial,
		Job:     j.name,
		Script:  j.lj.Script,
		Shell:   st.jobShell(),
		Env:     st.jobEnv(r.rec),
		Timeout: j.lj.Timeout,
	}
	proc, err := st.e.exec.Start(spec, j.lj.On, st.e.execEvents(r.rec.Serial))
	if err != nil {
		st.e.log.Error("start job", "job", j.name, "serial", r.rec.Serial, "err", err)
		r.rec.State, r.rec.Error, r.rec.End = whenlua.RunFailed, err.Error(), st.e.clock.Now()
		st.addFinished(r.rec)
		st.countFinished(r.rec, resultNotStarted)
		delete(st.running, r.rec.Serial)
		st.runq.slots--
		close(r.started)
		st.release(r)
		st.dequeue()
		return
	}
	r.proc = proc
	close(r.started)
	st.countStarted(r.rec)
	if proc.PID() == 0 {
		return // it starts on another node: started records where
	}
	r.rec.PID, r.rec.Dir = proc.PID(), proc.Dir()
	// Recorded so that a run lost in a crash still names its process and
	// directory; committed in a step of its own, after the process started.
	st.addRun(r.rec)
	st.e.log.Info("job started", "job", j.name, "serial", r.rec.Serial, "pid", r.rec.PID)
}

// started records where the process of a run started by another node
// runs: its node, pid and directory.
func (st *state) started(serial uint64, pid int, dir, node string) {
	r := st.running[serial]
	if r == nil || r.rec.PID == pid && r.rec.Dir == dir && r.rec.Node == node {
		return
	}
	if pid == 0 && r.rec.PID != 0 {
		return // an earlier notice, come after the one with the process
	}
	r.rec.PID, r.rec.Dir, r.rec.Node = pid, dir, node
	st.addRun(r.rec)
	if pid == 0 {
		return // claimed: its process starts next
	}
	st.e.log.Info("job started", "job", r.rec.Job, "serial", serial, "on", node, "pid", pid)
}

// jobShell is the shell that runs a script: a variable named SHELL when it
// is set, as in whenjobs, which puts the variables in the environment before
// it reads SHELL; else the daemon's shell.
func (st *state) jobShell() string {
	if v := st.vars["SHELL"]; !v.IsNil() && v.String() != "" {
		return v.String()
	}
	return st.e.opts.Shell
}

// jobEnv is the environment of a run: the daemon's, every variable, JOBNAME
// and JOBSERIAL, and WHENLUA_ATTEMPT and WHENLUA_FIRST_SERIAL: the attempt
// (1, or more for a retry or a rerun of a lost run) and the serial of the
// first attempt, which a job may use to stay idempotent.
func (st *state) jobEnv(rec whenlua.Run) []string {
	name, serial := rec.Job, rec.Serial
	attempt, first := max(rec.Attempt, 1), rec.FirstAttempt()
	env := make([]string, 0, len(st.e.opts.Env)+len(st.vars)+2)
	for _, kv := range st.e.opts.Env {
		k, _, _ := strings.Cut(kv, "=")
		if _, isVar := st.vars[k]; isVar || k == "JOBNAME" || k == "JOBSERIAL" || k == EnvAttempt || k == EnvFirstSerial || (k == whenlua.EnvHome && st.e.opts.Paths.Home != "") {
			continue
		}
		env = append(env, kv)
	}
	names := make([]string, 0, len(st.vars))
	for n := range st.vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		env = append(env, n+"="+st.vars[n].String())
	}
	// A job's own `whenlua set` reaches this daemon even when it was started
	// with --home rather than WHENLUA_HOME.
	if home := st.e.opts.Paths.Home; home != "" {
		env = append(env, whenlua.EnvHome+"="+home)
	}
	return append(env, "JOBNAME="+name, "JOBSERIAL="+strconv.FormatUint(serial, 10),
		EnvAttempt+"="+strconv.Itoa(attempt), EnvFirstSerial+"="+strconv.FormatUint(first, 10))
}

// Environment variables of a run besides JOBNAME and JOBSERIAL.
const (
	EnvAttempt     = "WHENLUA_ATTEMPT"
	EnvFirstSerial = "WHENLUA_FIRST_SERIAL"
)

// maxRerunAttempts bounds the attempts of a job with rerun_lost: a run that
// keeps being lost (it takes its daemon down) is not started forever.
const maxRerunAttempts = 5

// rerunLost starts again, as a new attempt, each run of lost (those
// recoverLostRuns recorded) whose job has the rerun_lost option.
func (st *state) rerunLost(lost []whenlua.Run) {
	for _, rec := range lost {
		j := st.jobs[rec.Job]
		if j == nil || !j.lj.RerunLost {
			continue
		}
		attempt := max(rec.Attempt, 1) + 1
		if attempt > maxRerunAttempts {
			st.e.log.Warn("lost run not rerun: too many attempts", "job", rec.Job, "serial", rec.Serial, "attempt", rec.Attempt)
			continue
		}
		j.attempt = retry{job: j.name, attempt: attempt, first: rec.FirstAttempt()}
		j.fired = slot{at: rec.Scheduled, catchUp: rec.CatchUp}
		r := st.startRun(j, rec.Trigger)
		st.e.log.Info("lost run rerun", "job", rec.Job, "lost_serial", rec.Serial, "serial", r.Serial, "attempt", attempt)
	}
}

// finish records a run whose process ended: its post hook runs (in the run's
// own generation), then its record is committed and its directory removed.
// A run whose process never started, or that was lost with the node that
// ran it, is recorded so, without its post hook.
func (st *state) finish(res Ended) {
	r := st.running[res.Serial]
	if r == nil {
		st.e.log.Error("result of an unknown run", "serial", res.Serial)
		return
	}
	delete(st.running, res.Serial)
	st.runq.slots--
	defer st.dequeue()
	rec := &r.rec
	if res.Node != "" {
		rec.Node = res.Node
	}
	if res.NotStarted != "" || res.Lost != "" {
		st.endUnrun(r, res)
		return
	}
	rec.State = whenlua.RunDone
	// The duration is the process's own; the start is on the engine's clock.
	rec.End, rec.Code, rec.Signal = rec.Start.Add(res.End.Sub(res.Start)), res.Code, res.Signal
	rec.Output, rec.OutputSize = res.Output, res.OutputSize
	if res.PID != 0 {
		rec.PID, rec.Dir = res.PID, res.Dir
	}
	switch {
	case res.TimedOut && r.job != nil:
		rec.Error = "timed out after " + r.job.lj.Timeout.String()
	case res.TimedOut:
		rec.Error = "timed out"
	case res.Cancelled && res.Stopped:
		rec.Error = "stopped with node " + res.Node
	case res.Cancelled && st.stopping:
		rec.Error = "stopped with the daemon"
	case res.Cancelled:
		rec.Error = "cancelled"
	}
	if r.job != nil {
		st.maybeRetry(r.job, rec, res.TimedOut, res.Cancelled)
		if r.job.lj.HasPost && !r.job.gen.closed {
			err := r.job.lj.CallPost(*rec, res.Dir)
			st.mayHaveChanged(r.job.gen)
			if err != nil {
				st.e.log.Error("post failed", "job", rec.Job, "serial", rec.Serial, "err", err)
				rec.Error = strings.TrimPrefix(rec.Error+"; post: "+err.Error(), "; ")
			}
		}
	}
	st.addFinished(*rec)
	st.countFinished(*rec, finishResult(*rec, res.Result))
	st.countRan(rec.Job, res.End.Sub(res.Start))
	if runSucceeded(*rec) {
		st.succeeded(rec.Job, rec.End)
	}
	st.cleanupAfterCommit(r)
	st.release(r)
	st.e.log.Info("job finished", "job", rec.Job, "serial", rec.Serial, "on", rec.Node, "code", rec.Code, "signal", rec.Signal, "duration", rec.Duration())
}

// endUnrun records a run whose process never started, or that was lost
// with the node that ran it; a lost run of a job with rerun_lost is started
// again.
func (st *state) endUnrun(r *run, res Ended) {
	rec := &r.rec
	rec.End = st.e.clock.Now()
	result := resultNotStarted
	switch {
	case res.Lost != "":
		rec.State, rec.Error, result = whenlua.RunLost, res.Lost, resultLost
		st.e.log.Warn("run lost", "job", rec.Job, "serial", rec.Serial, "on", rec.Node, "why", res.Lost)
	case res.Cancelled:
		rec.State, rec.Error, result = whenlua.RunCancelled, res.NotStarted, resultCancelled
		st.e.log.Info("job cancelled before it started", "job", rec.Job, "serial", rec.Serial)
	default:
		rec.State, rec.Error = whenlua.RunFailed, res.NotStarted
		st.e.log.Error("start job", "job", rec.Job, "serial", rec.Serial, "err", res.NotStarted)
	}
	st.addFinished(*rec)
	st.countFinished(*rec, result)
	st.cleanupAfterCommit(r)
	st.release(r)
	if res.Lost != "" {
		st.rerunLost([]whenlua.Run{*rec})
	}
}

// cleanupAfterCommit removes what is left of r's process once its record
// is committed.
func (st *state) cleanupAfterCommit(r *run) {
	proc, serial := r.proc, r.rec.Serial
	if proc == nil {
		return
	}
	local := st.e.opts.Executor == nil
	var cleanup func(error)
	cleanup = func(err error) {
		if err != nil && !local {
			// Another node's run keeps what is left of it until its end is
			// committed: the record goes with the next step (unrecorded),
			// and so does this (or the next leader cleans up).
			st.afterCommit(cleanup)
			return
		}
		if err := proc.Cleanup(); err != nil {
			st.e.log.Warn("remove run directory", "serial", serial, "err", err)
		}
	}
	st.afterCommit(cleanup)
}

// finishResult is the result label of a run whose process ended.
func finishResult(rec whenlua.Run, res runner.Result) string {
	switch {
	case res.TimedOut:
		return resultTimeout
	case res.Cancelled:
		return resultCancelled
	case runSucceeded(rec):
		return resultSuccess
	}
	return resultFailure
}

// runningList returns the running and queued runs, oldest serial first.
func (st *state) runningList() []whenlua.Run {
	out := make([]whenlua.Run, 0, len(st.running))
	for _, r := range st.running {
		out = append(out, r.rec)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Serial < out[b].Serial })
	return out
}

// recoverLostRuns marks runs left running by a daemon that died as lost;
// those the executor still follows (on other nodes of a cluster) are
// adopted instead: they are running again, to be recorded when they end.
// It returns the lost runs as recorded, for the metrics, which count runs
// of loaded jobs only, and for rerunLost.
func (st *state) recoverLostRuns() ([]whenlua.Run, error) {
	left, err := st.e.store.RunningRuns()
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	now := st.e.clock.Now()
	var lost []whenlua.Run
	for i := len(left) - 1; i >= 0; i-- { // oldest first
		r := left[i]
		why := ""
		if r.State == whenlua.RunRunning {
			var proc Process
			if proc, why = st.e.exec.Adopt(r, st.e.execEvents(r.Serial)); proc != nil {
				st.adopt(r, proc)
				continue
			}
		}
		switch {
		case why != "":
			r.Error = why
		case r.State == whenlua.RunQueued || r.Dir == "":
			r.Error = "the daemon stopped before it started"
		default:
			r.Error = "the daemon stopped while it ran"
			switch n := st.e.exec.StopStray(r.Dir, r.PID); n {
			case 0:
			case 1:
				r.Error += "; 1 of its processes was stopped at restart"
			default:
				r.Error += fmt.Sprintf("; %d of its processes were stopped at restart", n)
			}
		}
		r.State, r.End = whenlua.RunLost, now
		st.addRun(r)
		lost = append(lost, r)
		st.e.log.Warn("run lost", "job", r.Job, "serial", r.Serial, "on", r.Node, "pid", r.PID)
	}
	st.flush()
	if st.e.opts.Executor == nil {
		// Nothing runs yet: every run directory is a leftover.
		RemoveLeftoverRuns(st.e.opts.Paths.RunsDir, st.e.log.Warn)
	}
	return lost, nil
}

// adopt makes rec, which runs on, a running run again. Its job is found
// once the job files are loaded (attachAdopted).
func (st *state) adopt(rec whenlua.Run, proc Process) {
	r := &run{rec: rec, proc: proc, started: make(chan struct{})}
	close(r.started)
	st.running[rec.Serial] = r
	st.runq.slots++
	st.e.log.Info("run adopted", "job", rec.Job, "serial", rec.Serial, "on", rec.Node)
}

// attachAdopted gives each adopted run its loaded job, whose post hook
// then runs when it ends; a run of a job no longer loaded ends without.
func (st *state) attachAdopted() {
	for _, r := range st.running {
		if j := st.jobs[r.rec.Job]; r.job == nil && j != nil {
			r.job = j
			j.running++
			j.gen.runs++
		}
	}
}

// fileHost is what the Lua state of one generation calls back into. While
// the file loads, it is used on the loader's goroutine: values are read
// through get, sets are held back and applied only once the version is
// swapped in (release). From then on it is used on the engine goroutine.
type fileHost struct {
	st      *state
	path    string
	loading bool
	get     func(name string) whenlua.Value // while loading
	held    []heldSet
}

type heldSet struct {
	origin  string
	as      []whenlua.Assignment
	trigger bool
}

func (h *fileHost) Get(name string) whenlua.Value {
	for i := len(h.held) - 1; i >= 0; i-- {
		for _, a := range h.held[i].as {
			if a.Name == name {
				return a.Value
			}
		}
	}
	if h.loading {
		return h.get(name)
	}
	return h.st.vars[name]
}

func (h *fileHost) Set(origin string, as []whenlua.Assignment, trigger bool) error {
	if h.st != nil && h.st.sim != nil {
		return nil // a simulation replays the recorded sets of hooks instead
	}
	if h.loading {
		// lualib's set validated them; applySet applies them at release.
		h.held = append(h.held, heldSet{origin, as, trigger})
		return nil
	}
	h.st.applySet(origin, as, trigger)
	return nil
}

func (h *fileHost) Log(file, msg string) { h.st.e.log.Info(msg, "file", file) }

func (h *fileHost) Running() []whenlua.Run {
	if h.loading {
		return nil // top-level code starts no run
	}
	return h.st.runningList()
}

// maxMailsInFlight bounds the sendmail processes the daemon runs at once:
// a hook that mails in a loop (post, on_silence) would otherwise start one
// per call. A mail beyond it is dropped, and logged.
const maxMailsInFlight = 16

func (h *fileHost) SendMail(to string, msg []byte) {
	if h.st != nil && h.st.sim != nil {
		return // a simulation acts on nothing
	}
	e := h.st.e
	if e.mailing.Add(1) > maxMailsInFlight {
		e.mailing.Add(-1)
		e.log.Error("mail not sent", "to", to, "err", fmt.Sprintf("%d mails are already waiting for sendmail (a hook that mails in a loop?)", maxMailsInFlight))
		return
	}
	e.mail.Add(1)
	go func() {
		defer e.mail.Done()
		defer e.mailing.Add(-1)
		// runner.SendMail bounds the call by SendMailTimeout.
		if err := runner.SendMail(context.Background(), e.opts.Sendmail, msg); err != nil {
			e.log.Error("mail not sent", "to", to, "err", err)
			return
		}
		e.log.Info("mail sent", "to", to)
	}()
}

// release applies the sets held during the load.
func (h *fileHost) release() {
	h.loading = false
	held := h.held
	h.held = nil
	for _, s := range held {
		h.st.applySet(s.origin, s.as, s.trigger)
	}
}

var _ luaapi.Host = (*fileHost)(nil)
