package host

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/luaapi"
)

// state is the live state of the engine. Only the engine goroutine touches it.
type state struct {
	e *Engine

	vars    map[string]whenlua.Value
	jobs    map[string]*job              // active jobs by name
	files   map[string]*fileEntry        // job files by path
	index   map[string]map[*job]struct{} // variable -> when-jobs that may read it
	depsAll map[*job]struct{}            // when-jobs that may read any variable
	states  map[string]*whenlua.JobState // when-job evaluation state by name (also of jobs not loaded now)
	running map[uint64]*run              // running and queued runs
	runq    runQueue
	serial  uint64
	sched   *schedule

	lib map[string]string // lib module path -> content hash
	// unrecorded are records of ended runs whose commit failed; the next
	// step commits them. carry names the job states a split commit could
	// not store: the next step stores their current state.
	unrecorded []whenlua.Run
	carry      map[string]bool
	condErrs   map[string]string // job -> last condition error
	compiles   uint64
	stopping   bool
	dryRun     bool // evaluating for `test`: leave condition errors and reloaded() alone

	step step
	// lost are the runs recoverLostRuns recorded lost, for rerunLost.
	lost []whenlua.Run
}

// forceSet names the job files a forced reload (`whenlua reload --force`)
// loads again; all: every one.
type forceSet struct {
	all   bool
	files map[string]bool
}

func (f forceSet) has(path string) bool { return f.all || f.files[path] }

// step accumulates what one turn of the engine loop changes; flush commits
// it in one transaction, or undoes it when the commit fails.
type step struct {
	batch       whenlua.Batch
	undoVars    map[string]whenlua.Value
	undoStates  map[string]*whenlua.JobState
	undoSerial  uint64
	dirty       bool
	evalQueue   [][]*job // candidate sets waiting for their fixpoint
	toStart     []*run
	triggered   []string // when-jobs made due in this step, in start order
	afterCommit []func(error)
	afterLaunch []func() // after the commit and the launches of the step
	// finished are the records of runs that ended in this step: a commit
	// that fails does not lose them, they go into the next step.
	finished []whenlua.Run
	loaded   []*fileEntry // files loaded in this step: retried if it fails
	// dueCount counts how often each when-job was made due in this settle;
	// loop is set once one was made due too often and the step's further
	// evaluations were dropped (see maxDuePerStep).
	dueCount map[*job]int
	loop     error
}

// job is one active job of one generation.
type job struct {
	lj   *luaapi.Job
	gen  *generation
	name string

	deps map[string]struct{} // static and observed dependencies (when-jobs)
	all  bool                // may read any variable
	// observe: the names read stand for all that the condition may read,
	// until one of their values changes (luaapi.Job.DepsByReads). stale:
	// no evaluation has read them since the job entered or since its file's
	// Lua state may have changed: it is evaluated on every set until then.
	observe, stale bool
	// overLimit counts the evaluations in a row that ran out of time or
	// memory; at maxOverLimit the job is suspended (state.overLimit).
	overLimit     int
	suspended     bool
	reloadPending bool // the evaluations of the next fixpoint see reloaded() true
	running       int

	nextRun time.Time // every- and cron-jobs: the next run; zero = unscheduled
	slot    slot      // the scheduled time nextRun stands for
	fired   slot      // that of the firing being started
	attempt retry     // the retry being started, if any (attempt 0: none)
	heapIdx int
}

func (j *job) isWhen() bool { return j.lj.Kind == luaapi.When }

func newState(e *Engine) (*state, error) {
	st := &state{
		e:        e,
		jobs:     map[string]*job{},
		files:    map[string]*fileEntry{},
		index:    map[string]map[*job]struct{}{},
		depsAll:  map[*job]struct{}{},
		running:  map[uint64]*run{},
		condErrs: map[string]string{},
	}
	st.sched = newSchedule(e.clock, e.opts.KeepBoundaries)
	var err error
	if st.vars, err = e.store.Vars(); err != nil {
		return nil, fmt.Errorf("load variables: %w", err)
	}
	states, err := e.store.JobStates()
	if err != nil {
		return nil, fmt.Errorf("load job states: %w", err)
	}
	st.states = make(map[string]*whenlua.JobState, len(states))
	for name, s := range states {
		s := s
		st.states[name] = &s
	}
	if st.serial, err = e.store.Serial(); err != nil {
		return nil, fmt.Errorf("load serial: %w", err)
	}
	st.resetStep()
	return st, nil
}

func (st *state) resetStep() {
	st.step = step{
		batch:      whenlua.Batch{JobStates: map[string]*whenlua.JobState{}},
		undoVars:   map[string]whenlua.Value{},
		undoStates: map[string]*whenlua.JobState{},
		undoSerial: st.serial,
	}
	if len(st.unrecorded) > 0 {
		for _, r := range st.unrecorded {
			st.addFinished(r)
		}
		st.unrecorded = nil
	}
	for name := range st.carry {
		st.step.batch.JobStates[name] = st.states[name]
		st.step.dirty = true
	}
}

// addFinished records the end of a run; if the step's commit fails, the
// record is carried into the next step rather than lost.
func (st *state) addFinished(r whenlua.Run) {
	st.addRun(r)
	st.step.finished = append(st.step.finished, r)
}

// handle runs one request and flushes what it changed.
func (st *state) handle(f func()) {
	f()
	st.flush()
}

// setVar changes a variable within the current step, remembering the old
// value for undo.
func (st *state) setVar(name string, v whenlua.Value, origin string) {
	old, had := st.vars[name]
	if _, seen := st.step.undoVars[name]; !seen {
		if had {
			st.step.undoVars[name] = old
		} else {
			st.step.undoVars[name] = whenlua.Nil
		}
	}
	if v.IsNil() {
		delete(st.vars, name)
	} else {
		st.vars[name] = v
	}
	st.step.batch.Vars = append(st.step.batch.Vars, whenlua.VarChange{Name: name, Value: v, Origin: origin, Time: st.e.clock.Now()})
	st.step.dirty = true
}

// putState replaces a job's evaluation state within the current step.
func (st *state) putState(name string, s *whenlua.JobState) {
	if _, seen := st.step.undoStates[name]; !seen {
		st.step.undoStates[name] = st.states[name] // may be nil
	}
	if s == nil {
		delete(st.states, name)
	} else {
		st.states[name] = s
	}
	st.step.batch.JobStates[name] = s
	st.step.dirty = true
}

// nextSerial consumes a JOBSERIAL.
func (st *state) nextSerial() uint64 {
	st.serial++
	st.step.batch.Serial = st.serial
	st.step.dirty = true
	return st.serial
}

// addRun records a run (new or changed) within the current step.
func (st *state) addRun(r whenlua.Run) {
	st.step.batch.Runs = append(st.step.batch.Runs, r)
	st.step.dirty = true
}

// rollback undoes everything the current step changed in memory.
func (st *state) rollback() {
	for name, v := range st.step.undoVars {
		if v.IsNil() {
			delete(st.vars, name)
		} else {
			st.vars[name] = v
		}
	}
	for name, s := range st.step.undoStates {
		if s == nil {
			delete(st.states, name)
		} else {
			st.states[name] = s
		}
	}
	st.serial = st.step.undoSerial
}

// flush settles pending evaluations, commits the step and then runs what
// waits for the commit: replies, and the processes of the runs it started.
func (st *state) flush() {
	st.settle()
	var err error
	var notStarted map[uint64]bool
	if st.step.dirty {
		notStarted, err = st.commit(&st.step.batch)
		if err != nil {
			st.e.log.Error("commit", "err", err)
			for _, r := range st.step.finished {
				// Kept to be stored with the next step; a deposed cluster
				// leader's never is: its late finish is refused.
				st.e.log.Warn("run finish not stored", "job", r.Job, "serial", r.Serial, "state", r.State, "code", r.Code, "err", err)
			}
			st.rollback()
			for _, r := range st.step.toStart {
				st.dropRun(r)
			}
			st.unrecorded = append(st.unrecorded, st.step.finished...)
			for _, ent := range st.step.loaded {
				// What the load set or evaluated is undone: load it again
				// at the next scan.
				st.e.loader.markStale(ent.path)
			}
		}
	}
	toStart, after, launched := st.step.toStart, st.step.afterCommit, st.step.afterLaunch
	st.resetStep()
	for _, f := range after {
		f(err)
	}
	if err != nil {
		// Runs put back in the queue claim the free slots again (after
		// the callbacks, which take the step's own queued runs out); the
		// retry of the step starts them.
		st.dequeue()
	}
	if err == nil {
		for _, r := range toStart {
			if notStarted[r.rec.Serial] {
				// A run from the queue goes back to it; a new one failed.
				if !r.queued {
					r.rec.State, r.rec.Error, r.rec.End = whenlua.RunFailed, "not started: its record could not be stored", st.e.clock.Now()
					st.addFinished(r.rec)
				}
				st.dropRun(r)
				continue
			}
			st.launch(r)
		}
		if len(notStarted) > 0 {
			st.dequeue() // the runs that went back to the queue
		}
		// Launch records are committed in a step of their own.
		if st.step.dirty {
			st.flush()
		}
	}
	for _, f := range launched {
		f()
	}
}

// afterLaunch queues f to run once the current step is committed (or
// undone) and the processes of its runs have been started.
func (st *state) afterLaunch(f func()) {
	st.step.afterLaunch = append(st.step.afterLaunch, f)
}

// afterCommit queues f to run once the current step is committed (err nil)
// or undone (err set).
func (st *state) afterCommit(f func(error)) {
	st.step.afterCommit = append(st.step.afterCommit, f)
}

// ---- evaluation ----

// queueEval asks for the fixpoint over the when-jobs that may read any of names.
func (st *state) queueEval(names []string) {
	seen := map[*job]struct{}{}
	var cands []*job
	for _, n := range names {
		for j := range st.index[n] {
			if _, ok := seen[j]; !ok {
				seen[j] = struct{}{}
				cands = append(cands, j)
			}
		}
	}
	for j := range st.depsAll {
		if _, ok := seen[j]; !ok {
			seen[j] = struct{}{}
			cands = append(cands, j)
		}
	}
	if len(cands) > 0 {
		st.step.evalQueue = append(st.step.evalQueue, cands)
	}
}

// maxDuePerStep bounds how often one when-job may be made due in one step.
// Only sets made by the step's own hooks (a pre that sets what its own
// condition reads) can make a job due again; past the bound the step stops
// evaluating, keeps what it did, and says which jobs looped.
const maxDuePerStep = 8

// settle runs queued evaluations until none is left, starting the jobs they
// make due. Hooks that set variables queue further evaluations, up to the
// bound of maxDuePerStep, counted from each settle: the sets of one group
// commit each settle in turn.
func (st *state) settle() {
	st.step.dueCount = nil
	for len(st.step.evalQueue) > 0 {
		cands := st.step.evalQueue[0]
		st.step.evalQueue = st.step.evalQueue[1:]
		for _, j := range st.fixpoint(cands) {
			if st.step.dueCount == nil {
				st.step.dueCount = map[*job]int{}
			}
			if st.step.dueCount[j]++; st.step.dueCount[j] > maxDuePerStep {
				st.stopLoop()
				return
			}
			st.step.triggered = append(st.step.triggered, j.name)
			st.startRun(j, "when")
		}
	}
}

// stopLoop drops the step's remaining evaluations once a job was made due
// more than maxDuePerStep times, and reports the jobs that were, in the log
// and in status; the step is committed as far as it went.
func (st *state) stopLoop() {
	st.step.evalQueue = nil
	var looped []*job
	for j, n := range st.step.dueCount {
		if n >= maxDuePerStep {
			looped = append(looped, j)
		}
	}
	sort.Slice(looped, func(a, b int) bool { return looped[a].name < looped[b].name })
	var names []string
	for _, j := range looped {
		msg := fmt.Sprintf("%s:%d: made due %d times in one step by sets of its own step (a pre or post that sets what its condition reads?); the step was stopped there",
			j.gen.path, j.lj.Line, maxDuePerStep)
		st.condErrs[j.name] = msg
		names = append(names, fmt.Sprintf("%s (%s:%d)", j.name, j.gen.path, j.lj.Line))
	}
	st.step.loop = fmt.Errorf("%w: the set was stored, but its step was stopped: %s kept making itself due (%d times); check its pre/post hooks",
		whenlua.ErrConflict, strings.Join(names, ", "), maxDuePerStep)
	st.e.log.Error("evaluation loop stopped", "jobs", strings.Join(names, ", "))
}

// fixpoint evaluates cands repeatedly until the set of due jobs stops
// growing (SPEC §4), and returns the due jobs in name order. A job loaded
// since its last evaluation sees reloaded() true in every pass, as whenjobs
// passes onload to each pass: whether it is due must not depend on whether
// another job of its file became due and caused a second pass.
func (st *state) fixpoint(cands []*job) []*job {
	sort.Slice(cands, func(a, b int) bool { return whenlua.JobNameLess(cands[a].name, cands[b].name) })
	if !st.dryRun {
		defer func() {
			for _, j := range cands {
				j.reloadPending = false
			}
		}()
	}
	due := map[*job]struct{}{}
	for {
		grew := false
		for _, j := range cands {
			if j.gen.retired || j.suspended {
				continue
			}
			if st.evalJob(j) {
				if _, ok := due[j]; !ok {
					due[j] = struct{}{}
					grew = true
				}
			}
		}
		if !grew {
			break
		}
	}
	out := make([]*job, 0, len(due))
	for _, j := range cands {
		if _, ok := due[j]; ok {
			out = append(out, j)
		}
	}
	return out
}

// evalJob evaluates one when-job, moves its snapshot and edge state on, and
// reports whether it is due (true now, false at the previous evaluation).
func (st *state) evalJob(j *job) bool {
	prev := st.states[j.name]
	if prev == nil || prev.Cond != j.lj.Cond {
		prev = &whenlua.JobState{Cond: j.lj.Cond}
	}
	ev := j.lj.Evaluate(luaapi.EvalInput{Evaluated: prev.Evaluated, Prev: prev.Snapshot, Reloaded: j.reloadPending}) // false on an error
	ok, read, err := ev.OK, ev.Read, ev.Err
	if st.overLimit(j, err) {
		return false
	}
	if !st.dryRun {
		if err != nil {
			if st.condErrs[j.name] != err.Error() {
				st.e.log.Error("condition failed", "job", j.name, "err", err)
			}
			st.condErrs[j.name] = err.Error()
		} else {
			delete(st.condErrs, j.name)
		}
	}
	for _, name := range read {
		if _, known := j.deps[name]; !known && !j.all {
			j.deps[name] = struct{}{}
			st.indexAdd(name, j)
		}
	}
	// A test's values are not the real ones: its reads only add names.
	if j.stale && !st.dryRun {
		j.stale = false
		j.gen.fresh++
		delete(st.depsAll, j)
	}
	if j.lj.Impure {
		st.mayHaveChanged(j.gen)
	}
	if err != nil {
		// As in whenjobs, a condition that raises leaves the previous
		// snapshot and result as they were, and is not due.
		return false
	}
	pending := st.holdPending(j, prev, ok)
	// prev has j's condition: a state of another one was replaced above.
	if !prev.Evaluated || prev.Result != ok || !st.snapshotIs(j, prev.Snapshot) || !pending.Equal(prev.PendingSince) {
		st.putState(j.name, &whenlua.JobState{Cond: j.lj.Cond, Result: ok, Evaluated: true, Snapshot: st.snapshot(j), PendingSince: pending})
	}
	if j.lj.Hold > 0 {
		// Due only when the hold is over: fireHolds.
		return false
	}
	// After a load, a job that asks reloaded() counts its previous result
	// as false, so that `reloaded()` fires at every load and start although
	// it stays true through the whole fixpoint; jobs that do not ask keep
	// their edge state, so an edit re-fires none of them.
	if ev.AskedReloaded && j.reloadPending {
		return ok
	}
	return ok && !prev.Result
}

// maxOverLimit is how many evaluations in a row may run out of time or
// memory before the condition is suspended: each costs the whole limit, on
// the engine goroutine, at every set of what it reads.
const maxOverLimit = 2

// overLimit counts an evaluation of j that ran out of time or memory and,
// at the maxOverLimit-th in a row, suspends j: it leaves the index and is
// evaluated again only once its file changes or at `whenlua reload`. It
// reports whether j was suspended now.
func (st *state) overLimit(j *job, err error) bool {
	if st.dryRun {
		return false // a test changes nothing
	}
	var ce *luaapi.CallError
	if !errors.As(err, &ce) || !ce.Timeout && !ce.Memory {
		j.overLimit = 0
		return false
	}
	if j.overLimit++; j.overLimit < maxOverLimit {
		return false
	}
	j.suspended = true
	st.unindexJob(j)
	msg := err.Error() + fmt.Sprintf("; suspended after %d evaluations in a row over the limit, until its file changes or `whenlua reload`", maxOverLimit)
	st.condErrs[j.name] = msg
	st.e.log.Error("condition suspended", "job", j.name, "err", msg)
	return true
}

// resumeSuspended puts the suspended when-jobs back in the index
// (`whenlua reload`).
func (st *state) resumeSuspended() {
	for _, j := range st.jobs {
		if j.suspended && !j.gen.retired {
			j.suspended, j.overLimit = false, 0
			st.indexJob(j)
			delete(st.condErrs, j.name)
		}
	}
}

// snapshot takes the current values of the names j may read.
func (st *state) snapshot(j *job) map[string]whenlua.Value {
	if j.all {
		return maps.Clone(st.vars)
	}
	snap := make(map[string]whenlua.Value, len(j.deps))
	for name := range j.deps {
		snap[name] = st.vars[name] // Nil when unset: still a dependency
	}
	return snap
}

// snapshotIs reports whether snap equals what snapshot(j) would take now,
// without taking it: most evaluations change no snapshot.
func (st *state) snapshotIs(j *job, snap map[string]whenlua.Value) bool {
	if j.all {
		return maps.EqualFunc(st.vars, snap, whenlua.Value.Equal)
	}
	if len(snap) != len(j.deps) {
		return false
	}
	for name := range j.deps {
		if v, ok := snap[name]; !ok || !v.Equal(st.vars[name]) {
			return false
		}
	}
	return true
}

func (st *state) indexAdd(name string, j *job) {
	set := st.index[name]
	if set == nil {
		set = map[*job]struct{}{}
		st.index[name] = set
	}
	set[j] = struct{}{}
}

// indexJob enters a when-job into the dependency index.
func (st *state) indexJob(j *job) {
	j.deps = map[string]struct{}{}
	j.observe = j.lj.DepsAll && j.lj.DepsByReads
	j.all = j.lj.DepsAll && !j.observe
	if j.all {
		st.depsAll[j] = struct{}{}
		return
	}
	for _, name := range j.lj.Deps {
		j.deps[name] = struct{}{}
	}
	// Names read in earlier evaluations (kept in the persisted snapshot) stay dependencies.
	if s := st.states[j.name]; s != nil && s.Cond == j.lj.Cond {
		for name := range s.Snapshot {
			j.deps[name] = struct{}{}
		}
	}
	for name := range j.deps {
		st.indexAdd(name, j)
	}
	if j.observe {
		j.stale = true
		st.depsAll[j] = struct{}{}
	}
}

// mayHaveChanged is called after Lua code of g other than a side-effect
// free condition ran (a hook, a condition the analysis cannot see into):
// the names g's observed jobs compute may differ now, so each is evaluated
// on every set again until its next evaluation reads them anew.
func (st *state) mayHaveChanged(g *generation) {
	if g.fresh == 0 {
		return
	}
	for _, j := range g.jobs {
		if j.observe && !j.stale && !j.suspended {
			j.stale = true
			st.depsAll[j] = struct{}{}
		}
	}
	g.fresh = 0
}

// unindexJob removes a when-job from the dependency index.
func (st *state) unindexJob(j *job) {
	delete(st.depsAll, j)
	for name := range j.deps {
		if set := st.index[name]; set != nil {
			delete(set, j)
			if len(set) == 0 {
				delete(st.index, name)
			}
		}
	}
}

// ---- host callbacks for Lua (engine goroutine) ----

// applySet applies assignments from origin; with trigger it queues the
// evaluation of the jobs that may read them. as has passed
// whenlua.SetRequest.Validate where it entered (the server, or lualib's set
// and whisper).
func (st *state) applySet(origin string, as []whenlua.Assignment, trigger bool) error {
	names := make([]string, 0, len(as))
	for _, a := range as {
		st.setVar(a.Name, a.Value, origin)
		names = append(names, a.Name)
	}
	if trigger {
		st.queueEval(names)
	}
	return nil
}
