package host

import (
	"fmt"
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
	dryRun     bool // settling for `test`: start no run, leave condition errors, holds and reloaded() alone
	// evalSeqs is each job's newest stored evaluation sequence (Batch.Evals);
	// loadCause, while a load is applied, is the trigger kind of the
	// evaluations it makes (TriggerStart, TriggerReload; empty: TriggerLoad).
	evalSeqs  map[string]uint64
	loadCause string
	// left names the jobs that left (and were not loaded again) whose
	// kept evaluations remain, oldest first; pruneLeft keeps keepLeftRings.
	left []string
	// sim, in the throwaway engine of `whenlua simulate`, records the runs
	// that would start instead of starting them (simulate.go); nil in a
	// daemon.
	sim *simulation

	// watched is when this daemon began watching each job with expect
	// (silence.go).
	watched map[string]time.Time

	step step
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
	evalQueue   []evalBatch           // candidate sets waiting for their fixpoint
	evals       []*whenlua.Evaluation // evaluations and firings to keep for why
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
	// sets counts the sets applied in this step and rounds the evaluation
	// rounds begun (entries taken from evalQueue); setRounds holds the
	// round of each set that queued one, in order (state.markSet).
	sets, rounds int
	setRounds    []int
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
		watched:  map[string]time.Time{},
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
	if st.evalSeqs, err = e.store.EvalSeqs(); err != nil {
		return nil, fmt.Errorf("load evaluation sequences: %w", err)
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
