package host

import (
	"slices"
	"time"

	"github.com/whenlua/whenlua"
)

// retry is a pending retry of a failed run: attempt number attempt of the
// job named job is due at `at`; first is the serial of attempt 1. Retries
// are kept by job name, so one survives a reload of its file; they are not
// persisted: a daemon that stops drops them.
type retry struct {
	job     string
	at      time.Time
	attempt int
	first   uint64
}

// maybeRetry decides, for a finished run of j, whether another attempt
// follows: the job has the retry option, the run failed (a non-zero exit,
// a signal, a timeout, not a cancel) and attempts are left. It then sets
// the record's RetryAt and queues the retry.
func (st *state) maybeRetry(j *job, rec *whenlua.Run, timedOut, cancelled bool) {
	if j.lj.Retry == nil || st.stopping || cancelled && !timedOut {
		return
	}
	if rec.Code == 0 && rec.Signal == "" && !timedOut {
		return
	}
	n := max(rec.Attempt, 1)
	d, ok := j.lj.Retry.After(n)
	if !ok {
		return
	}
	rec.RetryAt = st.e.clock.Now().Add(d)
	st.sched.addRetry(&retry{job: rec.Job, at: rec.RetryAt, attempt: n + 1, first: rec.FirstAttempt()})
}

// addRetry queues r in time order.
func (s *schedule) addRetry(r *retry) {
	i, _ := slices.BinarySearchFunc(s.retries, r.at, func(p *retry, at time.Time) int {
		if p.at.After(at) {
			return 1
		}
		return -1
	})
	s.retries = slices.Insert(s.retries, i, r)
}

// dueRetries removes and returns the retries due by now.
func (s *schedule) dueRetries() []*retry {
	now := s.clock.Now()
	i := 0
	for i < len(s.retries) && !s.retries[i].at.After(now) {
		i++
	}
	if i == 0 {
		return nil
	}
	out := slices.Clone(s.retries[:i])
	s.retries = slices.Delete(s.retries, 0, i)
	return out
}

// fireRetries starts the retries that are due, each as its own run with
// its own serial; one whose job is no longer loaded is dropped.
func (st *state) fireRetries() {
	for _, r := range st.sched.dueRetries() {
		j := st.jobs[r.job]
		if j == nil || j.lj.Retry == nil {
			st.e.log.Info("retry dropped: the job is gone or has no retry option", "job", r.job, "first_serial", r.first)
			continue
		}
		j.attempt = *r
		st.traceRun(j, runTrigger("retry"), st.startRun(j, "retry"))
	}
}

// preRunning is what a pre hook sees as running: the running and queued
// runs, and a pending retry as a run of its first serial, so that one()
// refuses to start a job whose failed run is to be tried again.
func (st *state) preRunning() []whenlua.Run {
	out := st.runningList()
	for _, r := range st.sched.retries {
		out = append(out, whenlua.Run{Serial: r.first, Job: r.job, State: whenlua.RunQueued, Trigger: "retry"})
	}
	return out
}
