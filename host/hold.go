package host

import (
	"slices"
	"sort"
	"time"

	"github.com/whenlua/whenlua"
)

// holdPending returns the PendingSince the evaluation of j gives, whose
// condition was prev.Result and is now ok: a rising edge starts the hold
// (and arms its deadline), a false ends it, and while it stays true it is
// kept (zero once the job fired for this stretch of true).
func (st *state) holdPending(j *job, prev *whenlua.JobState, ok bool) time.Time {
	if j.lj.Hold <= 0 || !ok {
		return time.Time{}
	}
	if prev.Evaluated && prev.Result {
		return prev.PendingSince
	}
	now := st.e.clock.Now()
	if !st.dryRun {
		st.sched.addHold(deadline{job: j.name, at: now.Add(j.lj.Hold)})
	}
	return now
}

// armHold re-arms the deadline of a loaded when-job whose stored state has
// a pending hold (after a restart or a reload).
func (st *state) armHold(j *job) {
	if s := st.states[j.name]; j.lj.Hold > 0 && s != nil && s.Cond == j.lj.Cond && !s.PendingSince.IsZero() {
		st.sched.addHold(deadline{job: j.name, at: s.PendingSince.Add(j.lj.Hold)})
	}
}

// addHold queues h in time order.
func (s *schedule) addHold(h deadline) {
	s.holds = insertDeadline(s.holds, h)
}

// fireHolds starts the when-jobs whose condition has now held for their
// hold: each runs once, and its pending time is cleared until the
// condition turns false and true again. A deadline whose hold was reset
// or moved since is ignored.
func (st *state) fireHolds() {
	now := st.e.clock.Now()
	due := takeDue(&st.sched.holds, now)
	var names []string
	for _, h := range due {
		j, s := st.jobs[h.job], st.states[h.job]
		if j == nil || j.lj.Hold <= 0 || s == nil || s.PendingSince.IsZero() || s.Cond != j.lj.Cond || s.PendingSince.Add(j.lj.Hold).After(now) {
			continue
		}
		cp := *s
		cp.PendingSince = time.Time{}
		st.putState(h.job, &cp)
		names = append(names, h.job)
	}
	slices.SortFunc(names, whenlua.CompareJobNames)
	for _, name := range slices.Compact(names) {
		j := st.jobs[name]
		st.traceRun(j, whenlua.Trigger{Kind: whenlua.TriggerHold}, st.startRun(j, "when"))
	}
}

// pendingHolds lists the when-jobs waiting for their hold, earliest due
// first, for status.
func (st *state) pendingHolds() []whenlua.Pending {
	var out []whenlua.Pending
	for name, s := range st.states {
		if j := st.jobs[name]; j != nil && j.lj.Hold > 0 && !s.PendingSince.IsZero() && s.Cond == j.lj.Cond {
			out = append(out, whenlua.Pending{Job: name, Since: s.PendingSince, Due: s.PendingSince.Add(j.lj.Hold)})
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Due.Equal(out[b].Due) {
			return out[a].Due.Before(out[b].Due)
		}
		return whenlua.JobNameLess(out[a].Job, out[b].Job)
	})
	return out
}
