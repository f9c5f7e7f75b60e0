package host

import (
	"container/heap"
	"slices"
	"sort"
	"time"
)

// deadline is a time at which something is due for the job named job: the
// end of a when-job's hold (at `at` its condition, true since then minus
// the hold, has held long enough, unless it turned false before), or the
// end of a job's silence window.
type deadline struct {
	job string
	at  time.Time
}

// insertDeadline puts d into q, which is earliest first, after the
// deadlines of the same time.
func insertDeadline(q []deadline, d deadline) []deadline {
	i := sort.Search(len(q), func(i int) bool { return q[i].at.After(d.at) })
	return slices.Insert(q, i, d)
}

// takeDue removes from *q, earliest first, the deadlines due at now, and
// returns them.
func takeDue(q *[]deadline, now time.Time) []deadline {
	i := 0
	for i < len(*q) && !(*q)[i].at.After(now) {
		i++
	}
	due := slices.Clone((*q)[:i])
	*q = slices.Delete(*q, 0, i)
	return due
}

// schedule keeps every every- and cron-job's next run time in a heap and one timer
// for the earliest. Owned by the engine goroutine. Times are time.Time, not
// Unix nanoseconds, which end in 2262: a period of centuries has its next
// run beyond that.
//
// Next runs are wall-clock times, but a timer runs on the monotonic clock,
// which does not see a clock step and stops while the machine sleeps. So
// the timer never waits longer than maxTimerWait, and each time it fires
// the schedule is compared with the wall clock again: what a jump forward
// (a suspend) made due runs, and a next run that a step back left more
// than a period away is computed again from now.
type schedule struct {
	clock   Clock
	h       jobHeap
	retries []*retry   // pending retries, earliest first
	holds   []deadline // when-jobs' hold deadlines, earliest first
	// silences are the deadlines of jobs with expect, earliest first, one
	// per job.
	silences []deadline
	timer    Timer
	armed    time.Time // what the timer is armed for; zero = none
	seen     time.Time // the latest wall-clock time the schedule looked at
	stepped  bool      // the wall clock went back since due last ran
	// keep, when nonzero, is EngineOptions.KeepBoundaries: each scheduled
	// time no older than keep runs once, missed ones included.
	keep time.Duration
}

// wentBack reports whether the wall clock reads earlier than when the
// schedule last looked at it (a clock step back), and remembers now. It
// compares wall-clock readings: monotonic ones never go back.
func (s *schedule) wentBack(now time.Time) bool {
	now = now.Round(0)
	s.stepped = s.stepped || now.Before(s.seen)
	s.seen = now
	return s.stepped
}

// maxTimerWait bounds how late an every-job runs after the wall clock
// jumped forward (a resume from suspend) or stepped back.
const maxTimerWait = time.Minute

func newSchedule(c Clock, keep time.Duration) *schedule { return &schedule{clock: c, keep: keep} }

// add schedules j to fire at next for the scheduled time sl, or, when next
// is zero, at its next time after now; a job with no next time is left out.
func (s *schedule) add(j *job, next time.Time, sl slot) {
	if next.IsZero() {
		next = j.lj.Next(s.clock.Now())
		sl = slot{at: next}
		next = next.Add(jitter(j))
	}
	j.nextRun, j.slot = next, sl
	if !next.IsZero() {
		heap.Push(&s.h, j)
	}
}

func (s *schedule) remove(j *job) {
	if j.heapIdx >= 0 && j.heapIdx < len(s.h) && s.h[j.heapIdx] == j {
		heap.Remove(&s.h, j.heapIdx)
	}
	j.nextRun = time.Time{}
}

// timerC returns the channel of a timer armed for the earliest job, or nil
// when nothing is scheduled.
func (s *schedule) timerC() <-chan time.Time {
	if len(s.h) == 0 && len(s.retries) == 0 && len(s.holds) == 0 && len(s.silences) == 0 {
		if s.timer != nil {
			s.timer.Stop()
			s.timer, s.armed = nil, time.Time{}
		}
		return nil
	}
	s.wentBack(s.clock.Now())
	var first time.Time
	if len(s.h) > 0 {
		first = s.h[0].nextRun
	}
	if len(s.retries) > 0 && (first.IsZero() || s.retries[0].at.Before(first)) {
		first = s.retries[0].at
	}
	if len(s.holds) > 0 && (first.IsZero() || s.holds[0].at.Before(first)) {
		first = s.holds[0].at
	}
	if len(s.silences) > 0 && (first.IsZero() || s.silences[0].at.Before(first)) {
		first = s.silences[0].at
	}
	if s.timer == nil || !s.armed.Equal(first) {
		if s.timer != nil {
			s.timer.Stop()
		}
		// A timer that fires before its job is due is re-armed by due.
		s.timer = s.clock.NewTimer(min(first.Sub(s.clock.Now()), maxTimerWait))
		s.armed = first
	}
	return s.timer.C()
}

// due pops the jobs whose time has come and schedules their next run after
// now: missed times are not run again. Each popped job's fired says which
// scheduled time its run stands for; a catch_up job's run that comes late
// (the machine slept, the clock jumped) stands for the latest time it
// missed and counts as a catch-up. When the wall clock went back since the
// schedule last looked at it, a scheduled time later than the job's first
// time after now is computed again: only a step back makes one.
func (s *schedule) due() []*job {
	s.timer, s.armed = nil, time.Time{}
	now := s.clock.Now()
	if s.wentBack(now) {
		s.stepped = false
		for _, j := range s.h {
			if next := j.lj.Next(now); !next.IsZero() && j.slot.at.After(next) {
				j.slot, j.nextRun = slot{at: next}, next.Add(jitter(j))
			}
		}
		heap.Init(&s.h)
	}
	var out []*job
	for len(s.h) > 0 && !s.h[0].nextRun.After(now) {
		j := heap.Pop(&s.h).(*job)
		out = append(out, j)
	}
	for _, j := range out {
		j.fired = j.slot
		if s.keep > 0 {
			// The boundary after the one fired, even if it is past.
			next := keptAfter(j, j.fired.at, now, s.keep)
			j.slot, j.nextRun = slot{at: next}, next
			if !next.IsZero() {
				if next.After(now) {
					j.nextRun = next.Add(jitter(j))
				}
				heap.Push(&s.h, j)
			}
			continue
		}
		if j.lj.CatchUp && !j.slot.catchUp {
			if latest := latestSlot(j, j.slot.at, now); !latest.Equal(j.slot.at) || now.Sub(j.nextRun) > lateAfter {
				j.fired = slot{at: latest, catchUp: true}
			}
		}
		next := j.lj.Next(now)
		j.slot = slot{at: next}
		j.nextRun = next
		if !next.IsZero() {
			j.nextRun = next.Add(jitter(j))
			heap.Push(&s.h, j)
		}
	}
	return out
}

// fireDue starts the every- and cron-jobs whose time has come, then the
// retries and the holds that are due, then raises the silence alarms due.
func (st *state) fireDue() {
	for _, j := range st.sched.due() {
		st.traceRun(j, runTrigger(j.lj.Kind.String()), st.startRun(j, j.lj.Kind.String()))
	}
	st.fireRetries()
	st.fireHolds()
	st.fireSilences()
}

type jobHeap []*job

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(a, b int) bool {
	if !h[a].nextRun.Equal(h[b].nextRun) {
		return h[a].nextRun.Before(h[b].nextRun)
	}
	return h[a].name < h[b].name
}
func (h jobHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].heapIdx, h[b].heapIdx = a, b
}
func (h *jobHeap) Push(x any) {
	j := x.(*job)
	j.heapIdx = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	j.heapIdx = -1
	*h = old[:len(old)-1]
	return j
}
