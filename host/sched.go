package host

import (
	"container/heap"
	"time"
)

// schedule keeps every every-job's next run time in a heap and one timer
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
	clock Clock
	h     jobHeap
	timer Timer
	armed time.Time // what the timer is armed for; zero = none
}

// maxTimerWait bounds how late an every-job runs after the wall clock
// jumped forward (a resume from suspend) or stepped back.
const maxTimerWait = time.Minute

func newSchedule(c Clock) *schedule { return &schedule{clock: c} }

// add schedules j at next, or at its next period boundary after now when
// next is zero.
func (s *schedule) add(j *job, next time.Time) {
	if next.IsZero() {
		next = j.lj.Period.Next(s.clock.Now())
	}
	j.nextRun = next
	heap.Push(&s.h, j)
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
	if len(s.h) == 0 {
		if s.timer != nil {
			s.timer.Stop()
			s.timer, s.armed = nil, time.Time{}
		}
		return nil
	}
	first := s.h[0].nextRun
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
// now (missed boundaries are skipped, not caught up). A next run later than
// the first boundary after now can only come from the wall clock stepping
// back: it is computed again.
func (s *schedule) due() []*job {
	s.timer, s.armed = nil, time.Time{}
	now := s.clock.Now()
	stepped := false
	for _, j := range s.h {
		if next := j.lj.Period.Next(now); j.nextRun.After(next) {
			j.nextRun, stepped = next, true
		}
	}
	if stepped {
		heap.Init(&s.h)
	}
	var out []*job
	for len(s.h) > 0 && !s.h[0].nextRun.After(now) {
		j := heap.Pop(&s.h).(*job)
		out = append(out, j)
	}
	for _, j := range out {
		j.nextRun = j.lj.Period.Next(now)
		heap.Push(&s.h, j)
	}
	return out
}

// fireDue starts the every-jobs whose time has come.
func (st *state) fireDue() {
	for _, j := range st.sched.due() {
		st.startRun(j, "every")
	}
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
