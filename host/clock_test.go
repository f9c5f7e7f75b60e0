package host

import (
	"sort"
	"sync"
	"time"
)

// FakeClock is a Clock that moves only when Advance, Set or Jump is called.
// Its timers run on a monotonic clock of their own, as real timers do:
// Jump steps the wall clock alone (a clock step, a suspend), and timers do
// not see it. It is safe for concurrent use.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	mono   time.Duration // the monotonic clock, from the start
	timers []*fakeTimer
}

// NewFakeClock returns a fake clock showing now.
func NewFakeClock(now time.Time) *FakeClock { return &FakeClock{now: now} }

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the fake time reaches now+d.
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.mono + d, ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Set moves the fake time to t (forward only), the monotonic clock with it,
// and fires due timers in deadline order.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.mono += t.Sub(c.now)
		c.now = t
	}
	sort.Slice(c.timers, func(i, j int) bool { return c.timers[i].at < c.timers[j].at })
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at <= c.mono {
			select {
			case tm.ch <- c.now:
			default:
			}
			continue
		}
		kept = append(kept, tm)
	}
	c.timers = kept
}

// Jump steps the wall clock by d, either way, and leaves the monotonic
// clock and the timers as they are.
func (c *FakeClock) Jump(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Advance moves the fake time forward by d.
func (c *FakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Timers returns how many timers are waiting; tests use it to know the
// engine has armed its timer before they advance the clock.
func (c *FakeClock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type fakeTimer struct {
	c  *FakeClock
	at time.Duration // on the monotonic clock
	ch chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, tm := range t.c.timers {
		if tm == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}
