package host

// The path of a set, in the order it runs: Engine.Set queues the request
// for the engine goroutine, which applies the sets queued together
// (applySets, applySet), evaluates the when-jobs that may read them until
// nothing more becomes due (settle, fixpoint, evalJob), and commits the
// step in one transaction before it replies and starts the due runs
// (flush). `whenlua test` runs the same apply and settle as a dry run and
// undoes it (test).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/luaapi"
)

// setReq is a set waiting for the engine goroutine; sets already queued
// together are committed in one transaction (group commit).
type setReq struct {
	req   whenlua.SetRequest
	reply chan setReply
}

type setReply struct {
	resp whenlua.SetResponse
	err  error
}

// Set implements whenlua.Service. req has passed req.Validate where it
// entered (the server checks every set from the socket); Set trusts it.
func (e *Engine) Set(ctx context.Context, req whenlua.SetRequest) (whenlua.SetResponse, error) {
	if req.Mode == "" {
		req.Mode = whenlua.ModeSet
	}
	if req.Origin == "" {
		req.Origin = whenlua.OriginCLI
		if req.Mode == whenlua.ModeWhisper {
			req.Origin = whenlua.OriginWhisper
		}
	}
	if req.Mode == whenlua.ModeTest {
		var resp whenlua.SetResponse
		err := e.do(ctx, func() { resp.Triggered = e.st.test(req.Assignments) })
		return resp, err
	}
	r := &setReq{req: req, reply: make(chan setReply, 1)}
	select {
	case e.sets <- r:
	case <-e.done:
		return whenlua.SetResponse{}, ErrStopped
	case <-ctx.Done():
		return whenlua.SetResponse{}, ctx.Err()
	}
	// Once queued, the set is applied whatever the client does: wait for the
	// commit so that the reply is never a lie.
	select {
	case rep := <-r.reply:
		return rep.resp, rep.err
	case <-e.done:
		select {
		case rep := <-r.reply:
			return rep.resp, rep.err
		default:
			return whenlua.SetResponse{}, ErrStopped
		}
	}
}

// maxGroup bounds how many sets one commit takes, and maxGroupAssignments
// how many assignments: a group must fit in one transaction of the store
// whenever each of its sets would fit alone.
const (
	maxGroup            = 256
	maxGroupAssignments = 1024
)

// applyQueued commits first and the sets queued behind it, a group at a
// time.
func (e *Engine) applyQueued(first *setReq) {
	for first != nil {
		var batch []*setReq
		batch, first = e.drainSets(first)
		e.st.applySets(batch)
	}
}

// drainSets returns first and the sets queued behind it, as many as one
// group takes, and the set that did not fit, which starts the next group.
func (e *Engine) drainSets(first *setReq) (batch []*setReq, next *setReq) {
	batch = []*setReq{first}
	n := len(first.req.Assignments)
	for len(batch) < maxGroup && n < maxGroupAssignments {
		select {
		case r := <-e.sets:
			if n+len(r.req.Assignments) > maxGroupAssignments {
				return batch, r
			}
			batch = append(batch, r)
			n += len(r.req.Assignments)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// applySets is one group commit: every set applied in arrival order, each
// evaluated after its own assignments, then one commit for all of them.
func (st *state) applySets(batch []*setReq) {
	for _, r := range batch {
		r := r
		var resp whenlua.SetResponse
		var loop error
		resp.Triggered, loop = st.applyAndSettle(r.req.Origin, r.req.Assignments, r.req.Mode == whenlua.ModeSet)
		st.afterCommit(func(err error) {
			if errors.Is(err, whenlua.ErrOutcomeUnknown) {
				err = fmt.Errorf("may or may not be stored: %w", err)
			} else if err != nil {
				err = fmt.Errorf("not stored: %w", err)
			} else {
				err = loop
			}
			r.reply <- setReply{resp: resp, err: err}
		})
	}
	st.flush()
}

// test runs a set of as as a dry run: the same apply and settle as a set,
// which start no run and leave condition errors, holds and reloaded() as
// they are, then undoes every change. It returns the jobs that would become
// due.
func (st *state) test(as []whenlua.Assignment) []string {
	st.dryRun = true
	defer func() { st.dryRun = false }()
	// No hook runs in a dry run, so nothing sets again and the loop bound
	// of settle is never reached.
	due, _ := st.applyAndSettle("test", as, true)
	pending := st.step.finished // ended runs waiting for a commit stay queued
	st.rollback()
	st.resetStep()
	for _, r := range pending {
		st.addFinished(r)
	}
	return due
}

// applyAndSettle applies one set and settles the evaluations it queued
// (none without trigger: a whisper). It returns the jobs the set made due
// and, if the loop bound stopped its evaluations, why.
func (st *state) applyAndSettle(origin string, as []whenlua.Assignment, trigger bool) (triggered []string, loop error) {
	st.applySet(origin, as, trigger)
	before, looped := len(st.step.triggered), st.step.loop
	st.settle()
	triggered = append(triggered, st.step.triggered[before:]...)
	if st.step.loop != looped {
		loop = st.step.loop // this set's evaluations were stopped
	}
	return triggered, loop
}

// applySet applies assignments from origin; with trigger it queues the
// evaluation of the jobs that may read them. as has passed
// whenlua.SetRequest.Validate where it entered (the server, or lualib's set
// and whisper).
func (st *state) applySet(origin string, as []whenlua.Assignment, trigger bool) {
	st.countSet(origin)
	first := len(st.step.batch.Vars)
	names := make([]string, 0, len(as))
	for _, a := range as {
		st.setVar(a.Name, a.Value, origin)
		names = append(names, a.Name)
	}
	queued := len(st.step.evalQueue)
	if trigger {
		st.queueEval(names, whenlua.Trigger{Kind: whenlua.TriggerSet, Origin: origin, Names: names, Time: st.e.clock.Now()})
	}
	st.markSet(first, !trigger, len(st.step.evalQueue) > queued)
}

// ---- evaluation ----

// maxDuePerStep bounds how often one when-job may be made due in one step.
// Only sets made by the step's own hooks (a pre that sets what its own
// condition reads) can make a job due again; past the bound the step stops
// evaluating, keeps what it did, and says which jobs looped.
const maxDuePerStep = 8

// settle runs queued evaluations until none is left, starting the jobs they
// make due (in a dry run it only names them). Hooks that set variables
// queue further evaluations, up to the bound of maxDuePerStep, counted from
// each settle: the sets of one group commit each settle in turn.
func (st *state) settle() {
	st.step.dueCount = nil
	for len(st.step.evalQueue) > 0 {
		b := st.step.evalQueue[0]
		st.step.evalQueue = st.step.evalQueue[1:]
		st.step.rounds++
		var recs map[*job]*whenlua.Evaluation
		if st.tracing() {
			recs = make(map[*job]*whenlua.Evaluation, len(b.cands))
		}
		due := st.fixpoint(b.cands, b.trig, recs)
		stopped := false
		for _, j := range due {
			if st.step.dueCount == nil {
				st.step.dueCount = map[*job]int{}
			}
			if st.step.dueCount[j]++; st.step.dueCount[j] > maxDuePerStep {
				st.stopLoop()
				stopped = true
				break
			}
			st.step.triggered = append(st.step.triggered, j.name)
			if !st.dryRun {
				r := st.startRun(j, "when")
				if rec := recs[j]; rec != nil {
					rec.SetRun(r)
				}
			}
		}
		for _, j := range sortedRecords(recs) {
			if rec := recs[j]; rec.Outcome == whenlua.OutcomeDue && stopped {
				rec.Reason = fmt.Sprintf("the step was stopped: a job was made due more than %d times in it", maxDuePerStep)
			}
			st.record(recs[j])
		}
		if stopped {
			return
		}
	}
}

// stopLoop drops the step's remaining evaluations once a job was made due
// more than maxDuePerStep times, and reports the jobs that reached the
// bound (those looping beside it too), in the log and in status; the step
// is committed as far as it went.
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
//
// With recs, it keeps one record per job: its first evaluation's, or the
// one that made it due.
func (st *state) fixpoint(cands []*job, trig whenlua.Trigger, recs map[*job]*whenlua.Evaluation) []*job {
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
			if st.evalJob(j, trig, recs) {
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
// With recs, it keeps the record of the evaluation there (see fixpoint).
func (st *state) evalJob(j *job, trig whenlua.Trigger, recs map[*job]*whenlua.Evaluation) bool {
	if recs == nil {
		return st.evalOnce(j, nil)
	}
	// Only the first record of a set, or the one that made the job due, is
	// kept: a later pass that does neither builds none.
	old := recs[j]
	var rec *whenlua.Evaluation
	due := st.evalOnce(j, func(prev *whenlua.JobState, ev luaapi.Evaluation, outcome whenlua.Outcome, pending time.Time) {
		if old != nil && (outcome != whenlua.OutcomeDue || old.Outcome == whenlua.OutcomeDue) {
			return
		}
		rec = st.traceEval(j, trig, prev, ev, outcome)
		if outcome == whenlua.OutcomeHold {
			rec.Reason = fmt.Sprintf("true since %s, due at %s", pending.Format(time.RFC3339), pending.Add(j.lj.Hold).Format(time.RFC3339))
		}
	})
	if rec != nil {
		recs[j] = rec
	}
	return due
}

// evalOnce is evalJob's evaluation; trace, when given, is told what it
// found and what that means.
func (st *state) evalOnce(j *job, trace func(prev *whenlua.JobState, ev luaapi.Evaluation, outcome whenlua.Outcome, pending time.Time)) bool {
	prev := st.states[j.name]
	if prev == nil || prev.Cond != j.lj.Cond {
		prev = &whenlua.JobState{Cond: j.lj.Cond}
	}
	began := time.Now()
	ev := j.lj.Evaluate(luaapi.EvalInput{Evaluated: prev.Evaluated, Prev: prev.Snapshot, Reloaded: j.reloadPending}) // false on an error
	ok, read, err := ev.OK, ev.Read, ev.Err
	st.countEval(j, began, err)
	if st.overLimit(j, err) {
		if trace != nil {
			trace(prev, ev, whenlua.OutcomeSuspended, time.Time{})
		}
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
		if st.sim != nil {
			st.sim.condError(j, err)
		}
		if trace != nil {
			trace(prev, ev, whenlua.OutcomeError, time.Time{})
		}
		return false
	}
	pending := st.holdPending(j, prev, ok)
	// prev has j's condition: a state of another one was replaced above.
	if !prev.Evaluated || prev.Result != ok || !st.snapshotIs(j, prev.Snapshot) || !pending.Equal(prev.PendingSince) {
		ns := &whenlua.JobState{Cond: j.lj.Cond, Result: ok, Evaluated: true, Snapshot: st.snapshot(j), PendingSince: pending}
		if cur := st.states[j.name]; cur != nil {
			ns.LastSuccess, ns.SilentSince = cur.LastSuccess, cur.SilentSince
		}
		st.putState(j.name, ns)
	}
	// After a load, a job that asks reloaded() counts its previous result
	// as false, so that `reloaded()` fires at every load and start although
	// it stays true through the whole fixpoint; jobs that do not ask keep
	// their edge state, so an edit re-fires none of them. A job with a
	// hold is due only when the hold is over: fireHolds.
	due := ok && (!prev.Result || ev.AskedReloaded && j.reloadPending) && j.lj.Hold <= 0
	if due && st.sim != nil {
		st.sim.madeDue(j, read)
	}
	if trace != nil {
		outcome := whenlua.OutcomeDue
		if !due {
			outcome = evalOutcome(j, ok, pending)
		}
		trace(prev, ev, outcome, pending)
	}
	return due
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

// ---- commit ----

// flush settles pending evaluations, commits the step and then runs what
// waits for the commit: replies, and the processes of the runs it started.
func (st *state) flush() {
	st.settle()
	var err error
	var notStarted map[uint64]bool
	if st.step.dirty {
		seqs := st.stampEvals()
		var lost []whenlua.Evaluation
		notStarted, lost, err = st.commit(&st.step.batch)
		if err == nil {
			st.keepSeqs(seqs, lost)
			st.pruneLeft()
		}
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
					st.countFinished(r.rec, resultNotStarted)
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
