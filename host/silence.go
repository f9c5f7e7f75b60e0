package host

import (
	"slices"
	"sort"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/lualib"
)

// Silence alarms (the expect option): a job that went longer than its
// expect without a successful run is silent. The window counts from the
// later of the job's last success and the moment this daemon began
// watching the job (when it was first loaded with expect, at the daemon's
// start for the jobs loaded then): a job just added, or a daemon just
// started, has had no chance to run, and a daemon that was down is seen by
// its not answering rather than by every job's alarm at once. The alarm
// (JobState.SilentSince) is persisted; a success ends it.

// setSilence arms (or moves) the silence deadline of job; one per job.
func (s *schedule) setSilence(job string, at time.Time) {
	s.clearSilence(job)
	s.silences = insertDeadline(s.silences, deadline{job, at})
}

// clearSilence disarms the silence deadline of job, if any.
func (s *schedule) clearSilence(job string) {
	s.silences = slices.DeleteFunc(s.silences, func(d deadline) bool { return d.job == job })
}

// watchSilence starts or keeps watching a job as it enters (a load or a
// reload): the first time its name is seen with expect, the window starts
// now; a reload keeps it. A job without expect is not watched, and an
// alarm it had is over.
func (st *state) watchSilence(j *job) {
	s := st.states[j.name]
	if j.lj.Expect <= 0 {
		delete(st.watched, j.name)
		st.sched.clearSilence(j.name)
		if s != nil && !s.SilentSince.IsZero() {
			cp := *s
			cp.SilentSince = time.Time{}
			st.putState(j.name, &cp)
		}
		return
	}
	if _, ok := st.watched[j.name]; !ok {
		st.watched[j.name] = st.e.clock.Now()
	}
	if s != nil && !s.SilentSince.IsZero() {
		st.sched.clearSilence(j.name) // silent until a success
		return
	}
	st.sched.setSilence(j.name, st.silenceStart(j).Add(j.lj.Expect))
}

// unwatchSilence forgets a job that left (its file removed, the job
// renamed or deleted).
func (st *state) unwatchSilence(name string) {
	delete(st.watched, name)
	st.sched.clearSilence(name)
}

// silenceStart is when j's current window began: its last success or when
// this daemon began watching it, whichever is later.
func (st *state) silenceStart(j *job) time.Time {
	start := st.watched[j.name]
	if s := st.states[j.name]; s != nil && s.LastSuccess.After(start) {
		start = s.LastSuccess
	}
	return start
}

// succeeded records a successful run of the job named name that ended at
// end: its last success moves on, an alarm it had is over, and its next
// window starts.
func (st *state) succeeded(name string, end time.Time) {
	j := st.jobs[name]
	if j == nil {
		return // no longer loaded: its state went with it
	}
	var cp whenlua.JobState
	if s := st.states[name]; s != nil {
		cp = *s
	}
	if end.After(cp.LastSuccess) {
		cp.LastSuccess = end
	}
	if !cp.SilentSince.IsZero() {
		st.e.log.Info("job no longer silent", "job", name, "silent_since", cp.SilentSince)
		cp.SilentSince = time.Time{}
	}
	st.putState(name, &cp)
	if j.lj.Expect > 0 {
		st.sched.setSilence(name, st.silenceStart(j).Add(j.lj.Expect))
	}
}

// fireSilences raises the alarm of each job whose window ran out: it is
// recorded (persisted with the job's state), logged once, and the job's
// on_silence hook is called, once per silence.
func (st *state) fireSilences() {
	now := st.e.clock.Now()
	due := takeDue(&st.sched.silences, now)
	for _, d := range due {
		j := st.jobs[d.job]
		if j == nil || j.lj.Expect <= 0 {
			continue
		}
		st.raiseSilence(j, now)
	}
}

// raiseSilence records j as silent since now and calls its hook.
func (st *state) raiseSilence(j *job, now time.Time) {
	var cp whenlua.JobState
	if s := st.states[j.name]; s != nil {
		if !s.SilentSince.IsZero() {
			return
		}
		cp = *s
	}
	since := st.silenceStart(j)
	if since.Add(j.lj.Expect).After(now) {
		// Moved on since the deadline was armed.
		st.sched.setSilence(j.name, since.Add(j.lj.Expect))
		return
	}
	cp.SilentSince = now
	st.putState(j.name, &cp)
	name := j.name
	st.afterCommit(func(err error) {
		if err != nil {
			// Not recorded: raise it again at the retry of the step.
			if j := st.jobs[name]; j != nil {
				st.sched.setSilence(name, now)
			}
		}
	})
	args := []any{"job", j.name, "expect", j.lj.Expect.String(), "since", since}
	if !cp.LastSuccess.IsZero() {
		args = append(args, "last_success", cp.LastSuccess)
	}
	st.e.log.Warn("job silent: no successful run within its expect", args...)
	if j.lj.HasOnSilence && !j.gen.closed {
		err := j.lj.CallOnSilence(lualib.NewSilence(j.name, j.lj.Expect, cp.LastSuccess, since, now))
		st.mayHaveChanged(j.gen)
		if err != nil {
			if ent := st.files[j.gen.path]; ent != nil {
				st.hookFailed(ent, "on_silence of "+j.name, err)
			}
		}
	}
}

// silentList lists the loaded jobs whose alarm is raised, for status.
func (st *state) silentList() []whenlua.Silent {
	var out []whenlua.Silent
	for name, j := range st.jobs {
		if s := st.states[name]; j.lj.Expect > 0 && s != nil && !s.SilentSince.IsZero() {
			out = append(out, whenlua.Silent{Job: name, Expect: j.lj.Expect, LastSuccess: s.LastSuccess, SilentSince: s.SilentSince})
		}
	}
	sort.Slice(out, func(a, b int) bool { return whenlua.JobNameLess(out[a].Job, out[b].Job) })
	return out
}

// runSucceeded tells whether a finished run counts as a success: its
// process ran and exited 0, not killed by a signal (a timeout, a cancel).
func runSucceeded(r whenlua.Run) bool {
	return r.State == whenlua.RunDone && r.Code == 0 && r.Signal == ""
}
