package host

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// failingStore is a store whose commits fail while fail is set: a fault
// injected through the store interface.
type failingStore struct {
	whenlua.Store
	fail   atomic.Bool
	failed atomic.Int64 // commits refused so far
}

var errInjected = errors.New("injected commit failure")

func (s *failingStore) Commit(b *whenlua.Batch) error {
	if s.fail.Load() {
		s.failed.Add(1)
		return errInjected
	}
	return s.Store.Commit(b)
}

func TestASetWhoseCommitFailsIsRefusedAndUndoneAndTheEngineGoesOn(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/j.lua", `when("changes('x')", "true", {name="w"})`)
	var fs *failingStore
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), -1, func(o *EngineOptions) {
		fs = &failingStore{Store: o.Store}
		o.Store = fs
	})
	ctx := context.Background()
	te.set("x", 1)
	te.waitIdle()
	fs.fail.Store(true)
	_, err := te.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(2)}}})
	if err == nil {
		t.Fatal("a set whose commit failed was acknowledged")
	}
	if v, err := te.Get(ctx, "x"); err != nil || v.I != 1 {
		t.Errorf("x = %v, %v after the failed set, want 1", v, err)
	}
	fs.fail.Store(false)
	if got := te.set("x", 3); len(got) != 1 || got[0] != "w" {
		t.Errorf("the set after the failure triggered %v, want [w]", got)
	}
	h, err := te.History(ctx, "x", 0)
	if err != nil || len(h) != 2 || h[0].Value.I != 3 || h[1].Value.I != 1 {
		t.Errorf("history %+v, %v: want 3 and 1", h, err)
	}
}

// steppedClock is a fake clock that can also step back: Now is the fake
// time less back.
type steppedClock struct {
	*FakeClock
	back atomic.Int64
}

func (c *steppedClock) Now() time.Time {
	return c.FakeClock.Now().Add(-time.Duration(c.back.Load()))
}

// With the engine's clock stepped back an hour between two sets, history
// lists them in the order they were set, each with the time it was given.
func TestHistoryKeepsTheOrderOfTheSetsWhenTheClockStepsBack(t *testing.T) {
	p := testPaths(t, t.TempDir())
	clock := &steppedClock{FakeClock: NewFakeClock(testEpoch)}
	te := openTestEngineOpts(t, p, clock.FakeClock, -1, func(o *EngineOptions) { o.Clock = clock })
	te.set("x", 1)
	clock.back.Store(int64(time.Hour))
	te.set("x", 2)
	h, err := te.History(context.Background(), "x", 0)
	if err != nil || len(h) != 2 {
		t.Fatalf("history %+v, %v", h, err)
	}
	if h[0].Value.I != 2 || !h[0].Time.Equal(testEpoch.Add(-time.Hour)) || h[1].Value.I != 1 || !h[1].Time.Equal(testEpoch) {
		t.Errorf("history %+v: want 2 (an hour before) then 1", h)
	}
}
