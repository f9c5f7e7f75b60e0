package host

// Evaluation traces, for `whenlua why`: each evaluation of a when-job and
// each firing of a job records what triggered it, what the condition read
// and what came of it. The step's records are committed with the step
// (Batch.Evals), so a job's ring of whenlua.EvalKeep is on disk exactly
// when what it describes is.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/luaapi"
)

// evalBatch is a set of when-jobs waiting for their fixpoint and what
// asked for it.
type evalBatch struct {
	cands []*job
	trig  whenlua.Trigger
}

// tracing reports whether evaluations are recorded now: not in a dry run,
// nor when the engine was opened without traces (a benchmark's baseline).
func (st *state) tracing() bool { return !st.dryRun && !st.e.opts.NoEvalTrace }

// loadTrigger is the trigger of the evaluations a load of path makes.
func (st *state) loadTrigger(path string) whenlua.Trigger {
	kind := st.loadCause
	if kind == "" {
		kind = whenlua.TriggerLoad
	}
	return whenlua.Trigger{Kind: kind, Origin: path, Time: st.e.clock.Now()}
}

// traceEval builds the record of one evaluation of j that found ev, with
// prev the state it was compared with. It does not record it: a fixpoint
// keeps one record per job (see fixpoint).
func (st *state) traceEval(j *job, trig whenlua.Trigger, prev *whenlua.JobState, ev luaapi.Evaluation, outcome whenlua.Outcome) *whenlua.Evaluation {
	rec := &whenlua.Evaluation{
		Job: j.name, Time: st.e.clock.Now(), Trigger: trig, Cond: true,
		Result: ev.OK, PrevResult: prev.Evaluated && prev.Result, Reloaded: j.reloadPending,
		Outcome: outcome,
	}
	if ev.Err != nil {
		rec.Reason = ev.Err.Error()
	}
	if len(ev.Read) > 0 {
		rec.Values = make([]whenlua.ReadValue, len(ev.Read))
		for i, name := range ev.Read {
			rec.Values[i] = whenlua.ReadValue{Name: name, Value: st.vars[name]}
			if prev.Evaluated {
				v := prev.Snapshot[name]
				rec.Values[i].Prev = &v
			}
		}
	}
	return rec
}

// evalOutcome says what an evaluation of j that found ok, with pending
// its hold's start, means when it is not due.
func evalOutcome(j *job, ok bool, pending time.Time) whenlua.Outcome {
	switch {
	case !ok:
		return whenlua.OutcomeFalse
	case j.lj.Hold > 0 && !pending.IsZero():
		return whenlua.OutcomeHold
	}
	return whenlua.OutcomeStillTrue
}

// record adds an evaluation to the current step.
func (st *state) record(rec *whenlua.Evaluation) {
	st.step.evals = append(st.step.evals, rec)
	st.step.dirty = true
}

// traceRun records a firing of j by a trigger other than a condition (a
// schedule, a retry, `whenlua start`, a hold) and the run it gave.
func (st *state) traceRun(j *job, trig whenlua.Trigger, r whenlua.Run) {
	if !st.tracing() {
		return
	}
	rec := &whenlua.Evaluation{Job: j.name, Time: r.Start, Trigger: trig, Scheduled: r.Scheduled, CatchUp: r.CatchUp}
	if rec.Time.IsZero() {
		rec.Time = st.e.clock.Now()
	}
	rec.SetRun(r)
	if r.Attempt > 1 {
		rec.Reason = fmt.Sprintf("attempt %d of the run %d", r.Attempt, r.FirstSerial)
	}
	st.record(rec)
}

// runTrigger is the trigger a run of kind trigger (Run.Trigger) stands for.
func runTrigger(trigger string) whenlua.Trigger {
	switch trigger {
	case luaapi.Every.String(), luaapi.Cron.String():
		return whenlua.Trigger{Kind: whenlua.TriggerSchedule}
	case "retry":
		return whenlua.Trigger{Kind: whenlua.TriggerRetry}
	case "start":
		return whenlua.Trigger{Kind: whenlua.TriggerManual, Origin: whenlua.OriginCLI}
	}
	return whenlua.Trigger{Kind: trigger}
}

// stampEvals numbers the step's records, each job's from its newest stored
// one, and puts them in the batch. It returns each job's new newest
// sequence, for keepSeqs once the commit succeeded.
func (st *state) stampEvals() map[string]uint64 {
	if len(st.step.evals) == 0 {
		return nil
	}
	seqs := make(map[string]uint64, len(st.step.evals))
	st.step.batch.Evals = make([]whenlua.Evaluation, len(st.step.evals))
	for i, rec := range st.step.evals {
		seq, ok := seqs[rec.Job]
		if !ok {
			seq = st.evalSeqs[rec.Job]
		}
		seq++
		seqs[rec.Job] = seq
		rec.Seq = seq
		st.step.batch.Evals[i] = *rec
	}
	return seqs
}

// keepSeqs makes the sequences of a committed step's records the newest
// stored ones; lost, from a later part of a split commit that failed, are
// the records not stored: each of their jobs goes back to the one before
// its first lost record, so that each job's sequences stay contiguous
// (one takes the slot of the one EvalKeep before it).
func (st *state) keepSeqs(seqs map[string]uint64, lost []whenlua.Evaluation) {
	for _, rec := range lost {
		if s := rec.Seq - 1; s < seqs[rec.Job] {
			seqs[rec.Job] = s
		}
	}
	for job, s := range seqs {
		st.evalSeqs[job] = s
	}
}

// Why implements whenlua.Service: the job's state now and its kept
// evaluations, newest first. A job that is not loaded now but has kept
// evaluations is reported with them; one with neither is not found.
func (e *Engine) Why(ctx context.Context, name string) (whenlua.WhyReport, error) {
	rep := whenlua.WhyReport{Job: name}
	// The stored evaluations first, then the live state: a firing between
	// the two reads then shows in the next time rather than being newer
	// than it.
	evals, err := e.store.Evaluations(name)
	if err != nil {
		return rep, err
	}
	if err := e.do(ctx, func() { e.st.why(&rep) }); err != nil {
		return rep, err
	}
	if !rep.Loaded && len(evals) == 0 {
		return rep, fmt.Errorf("%w: no job named %q", whenlua.ErrNotFound, name)
	}
	rep.Evaluations = orEmpty(evals)
	return rep, nil
}

// why fills in the live part of a report: the job, its edge state, error,
// hold and next run.
func (st *state) why(rep *whenlua.WhyReport) {
	j := st.jobs[rep.Job]
	if j == nil {
		return
	}
	rep.Loaded = true
	info := jobInfo(j)
	rep.Kind, rep.Spec, rep.File, rep.Line = info.Kind, info.Spec(), info.File, info.Line
	if j.isWhen() {
		if s := st.states[j.name]; s != nil && s.Cond == j.lj.Cond {
			rep.Result = s.Result
			if j.lj.Hold > 0 && !s.PendingSince.IsZero() {
				rep.HoldDue = s.PendingSince.Add(j.lj.Hold)
			}
		}
		rep.CondError = st.condErrs[j.name]
		rep.Suspended = j.suspended
		return
	}
	rep.NextScheduled, rep.NextFire = j.slot.at, j.nextRun
}

// sortedRecords returns the records of a fixpoint in job name order.
func sortedRecords(recs map[*job]*whenlua.Evaluation) []*job {
	js := make([]*job, 0, len(recs))
	for j := range recs {
		js = append(js, j)
	}
	slices.SortFunc(js, func(a, b *job) int { return whenlua.CompareJobNames(a.name, b.name) })
	return js
}

// keepLeftRings is how many jobs that left keep their evaluations for
// `whenlua why` (the newest to leave): a job removed or renamed can still
// be asked about, and jobs renamed or generated over time do not pile up
// rings on disk and sequences in memory.
const keepLeftRings = 100

// jobLeft notes that the job named name left; its evaluations are kept
// until keepLeftRings jobs left after it.
func (st *state) jobLeft(name string) {
	if _, ok := st.evalSeqs[name]; !ok {
		return
	}
	st.left = append(st.left, name) // pruneLeft drops an earlier entry of it
}

// leftBeforeStart notes the jobs with kept evaluations that the first load
// did not load: they left while the daemon was stopped, in an order no
// one knows (name order here), and come before the ones that leave now.
func (st *state) leftBeforeStart() {
	var names []string
	for name := range st.evalSeqs {
		if st.jobs[name] == nil {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, whenlua.CompareJobNames)
	st.left = append(names, st.left...)
	st.pruneLeft()
}

// pruneLeft drops the evaluations of the jobs that left longest ago,
// beyond keepLeftRings; a job loaded again is no longer one that left.
func (st *state) pruneLeft() {
	if len(st.left) <= keepLeftRings {
		return // the common case, at every commit: nothing to look at
	}
	// Each name once, where it left last; none loaded again.
	seen := make(map[string]bool, len(st.left))
	kept := make([]string, 0, len(st.left))
	for _, n := range slices.Backward(st.left) {
		if !seen[n] && st.jobs[n] == nil {
			kept = append(kept, n)
		}
		seen[n] = true
	}
	slices.Reverse(kept)
	st.left = kept
	if len(st.left) <= keepLeftRings {
		return
	}
	drop := st.left[:len(st.left)-keepLeftRings]
	if err := st.e.store.DropEvaluations(drop); err != nil {
		st.e.log.Warn("drop the evaluations of jobs that left", "jobs", len(drop), "err", err)
		return
	}
	for _, name := range drop {
		delete(st.evalSeqs, name)
	}
	st.left = slices.Clone(st.left[len(drop):])
}
