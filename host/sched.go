package host

import (
	"container/heap"
	"time"
)

// schedule keeps every every-job's next run time in a heap and one timer
// for the earliest. Owned by the engine goroutine.
type schedule struct {
	clock Clock
	h     jobHeap
	timer Timer
	armed int64 // unix nanos the timer is armed for; 0 = none
}

func newSchedule(c Clock) *schedule { return &schedule{clock: c} }

// add schedules j at next (unix nanos), or at its next period boundary
// after now when next is 0.
func (s *schedule) add(j *job, next int64) {
	if next == 0 {
		next = j.lj.Period.Next(s.clock.Now()).UnixNano()
	}
	j.nextRun = next
	heap.Push(&s.h, j)
}

func (s *schedule) remove(j *job) {
	if j.heapIdx >= 0 && j.heapIdx < len(s.h) && s.h[j.heapIdx] == j {
		heap.Remove(&s.h, j.heapIdx)
	}
	j.nextRun = 0
}

// timerC returns the channel of a timer armed for the earliest job, or nil
// when nothing is scheduled.
func (s *schedule) timerC() <-chan time.Time {
	if len(s.h) == 0 {
		if s.timer != nil {
			s.timer.Stop()
			s.timer, s.armed = nil, 0
		}
		return nil
	}
	first := s.h[0].nextRun
	if s.timer == nil || s.armed != first {
		if s.timer != nil {
			s.timer.Stop()
		}
		s.timer = s.clock.NewTimer(time.Unix(0, first).Sub(s.clock.Now()))
		s.armed = first
	}
	return s.timer.C()
}

// due pops the jobs whose time has come and schedules their next run after
// now (missed boundaries are skipped, not caught up).
func (s *schedule) due() []*job {
	s.timer, s.armed = nil, 0
	now := s.clock.Now()
	var out []*job
	for len(s.h) > 0 && s.h[0].nextRun <= now.UnixNano() {
		j := heap.Pop(&s.h).(*job)
		out = append(out, j)
	}
	for _, j := range out {
		j.nextRun = j.lj.Period.Next(now).UnixNano()
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
	if h[a].nextRun != h[b].nextRun {
		return h[a].nextRun < h[b].nextRun
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
