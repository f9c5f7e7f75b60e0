package host

import (
	"math/rand/v2"
	"time"
)

// slot is a scheduled time of an every- or cron-job: the one a firing
// stands for, and whether the firing catches up on a missed time.
type slot struct {
	at      time.Time
	catchUp bool
}

// lateAfter is how late a firing may come and still count as on time: a
// later one was held up by a suspend or a clock step, not by the daemon.
const lateAfter = time.Minute

// catchUpRecords bounds how many of a job's newest run records are read to
// find the last scheduled time it ran for.
const catchUpRecords = 100

// maxCatchUpSteps bounds the walk over missed times (an every-second job
// after a long downtime).
const maxCatchUpSteps = 1 << 20

// pendingFiring is a scheduled job's next firing, carried from a retired
// version of its file to the one that replaces it.
type pendingFiring struct {
	next time.Time
	slot slot
}

// scheduleJob puts a newly loaded every- or cron-job in the schedule. A job
// carried over from the previous version of its file (same name, schedule
// and zone) keeps its pending firing. A catch_up job that missed a
// scheduled time since the last one it ran for (the daemon was down, or the
// job not loaded) fires now, once, for the latest time it missed.
func (st *state) scheduleJob(j *job, old pendingFiring) {
	if !old.next.IsZero() {
		st.sched.add(j, old.next, old.slot)
		return
	}
	if keep := st.e.opts.KeepBoundaries; keep > 0 {
		if last := st.lastScheduled(j.name); !last.IsZero() {
			now := st.e.clock.Now()
			if missed := keptAfter(j, last, now, keep); !missed.IsZero() && !missed.After(now) {
				st.sched.add(j, now, slot{at: missed})
				return
			}
		}
	}
	if j.lj.CatchUp {
		if last := st.lastScheduled(j.name); !last.IsZero() {
			now := st.e.clock.Now()
			if missed := j.lj.Next(last); !missed.IsZero() && !missed.After(now) {
				st.sched.add(j, now.Add(jitter(j)), slot{at: latestSlot(j, missed, now), catchUp: true})
				return
			}
		}
	}
	st.sched.add(j, time.Time{}, slot{})
}

// keptAfter returns the scheduled time of j after from, or, when that is
// older than keep before now, the first one that is not.
func keptAfter(j *job, from, now time.Time, keep time.Duration) time.Time {
	t := j.lj.Next(from)
	for range maxCatchUpSteps {
		if t.IsZero() || !t.Before(now.Add(-keep)) {
			break
		}
		t = j.lj.Next(t)
	}
	return t
}

// lastScheduled returns the latest scheduled time a run of the job stood
// for, from its newest run records; zero when none says.
func (st *state) lastScheduled(name string) time.Time {
	runs, err := st.e.store.Runs(name, catchUpRecords)
	if err != nil {
		st.e.log.Error("read run records for catch_up", "job", name, "err", err)
		return time.Time{}
	}
	var last time.Time
	for _, r := range runs {
		if r.Scheduled.After(last) {
			last = r.Scheduled
		}
	}
	return last
}

// latestSlot returns the latest scheduled time of j from `from` (itself a
// scheduled time) up to now.
func latestSlot(j *job, from, now time.Time) time.Time {
	t := from
	for range maxCatchUpSteps {
		n := j.lj.Next(t)
		if n.IsZero() || n.After(now) {
			break
		}
		t = n
	}
	return t
}

// jitter draws the delay of one firing of j, uniform in [0, jitter) (the
// job's jitter option; none without it), so that machines sharing a
// schedule do not all start at the same second.
func jitter(j *job) time.Duration {
	if j.lj.Jitter <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(j.lj.Jitter)))
}
