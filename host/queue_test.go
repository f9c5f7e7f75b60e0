package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/whenlua/whenlua"
)

// lockedGate returns a file that jobs wait on with `flock -s` while the
// test holds it, and the function that lets them go.
func lockedGate(t *testing.T) (path string, open func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "gate")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, func() { unix.Flock(int(f.Fd()), unix.LOCK_UN) }
}

// queueFile defines n when-jobs q0001... made due together by a set of go.
func queueFile(n int, gate string) string {
	return fmt.Sprintf(`for i = 1, %d do
  when('changes("go")', "flock -s %s true", {name = string.format("q%%04d", i)})
end`, n, gate)
}

func countStates(runs []whenlua.Run) map[whenlua.RunState]int {
	n := map[whenlua.RunState]int{}
	for _, r := range runs {
		n[r.State]++
	}
	return n
}

func TestAThousandDueRunsRunAtMostMaxRunsAtOnceAndTheRestQueueInSerialOrder(t *testing.T) {
	const jobs, maxRuns = 1000, 64
	gate, open := lockedGate(t)
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/q.lua", queueFile(jobs, gate))
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), -1, func(o *EngineOptions) { o.MaxRuns = maxRuns })
	ctx := context.Background()
	if due := te.set("go", 1); len(due) != jobs {
		t.Fatalf("%d jobs due, want %d", len(due), jobs)
	}
	runs, err := te.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := countStates(runs); len(runs) != jobs || n[whenlua.RunRunning] != maxRuns || n[whenlua.RunQueued] != jobs-maxRuns {
		t.Fatalf("jobs lists %d runs, %v; want %d running and %d queued", len(runs), n, maxRuns, jobs-maxRuns)
	}
	for i, r := range runs {
		if want := i < maxRuns; (r.State == whenlua.RunRunning) != want || r.Job != fmt.Sprintf("q%04d", i+1) {
			t.Fatalf("run %d of the list: %s %s, want the oldest serials running, the rest queued in serial order", i, r.Job, r.State)
		}
	}
	// A queued run can be cancelled: it is recorded as such and never runs.
	last := runs[len(runs)-1]
	if err := te.Cancel(ctx, last.Serial); err != nil {
		t.Fatalf("cancel queued run %d: %v", last.Serial, err)
	}
	if r, err := te.Run(ctx, last.Serial); err != nil || r.State != whenlua.RunCancelled || r.Error != "cancelled before it started" {
		t.Fatalf("cancelled queued run = %+v, %v", r, err)
	}

	open()
	// Each wait is bounded by a guard on progress, not on the whole: a
	// thousand runs take as long as the machine's disk and load make them.
	most, left, progress := 0, jobs, time.Now()
	for left > 0 {
		runs, err := te.Jobs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, countStates(runs)[whenlua.RunRunning])
		if len(runs) < left {
			left, progress = len(runs), time.Now()
		} else if time.Since(progress) > 20*time.Second {
			t.Fatalf("no run ended in 20s; %d left", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if most > maxRuns {
		t.Errorf("%d runs ran at once, want at most %d", most, maxRuns)
	}
	log, err := te.Log(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := countStates(log); n[whenlua.RunDone] != jobs-1 || n[whenlua.RunCancelled] != 1 {
		t.Fatalf("log: %v, want %d done and 1 cancelled", n, jobs-1)
	}
	for _, r := range log {
		if r.State == whenlua.RunDone && r.Code != 0 {
			t.Fatalf("run %d of %s: code %d, error %q", r.Serial, r.Job, r.Code, r.Error)
		}
	}
}

func TestStoppingTheDaemonRecordsQueuedRunsAsCancelled(t *testing.T) {
	gate, _ := lockedGate(t)
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/q.lua", queueFile(5, gate))
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), -1, func(o *EngineOptions) { o.MaxRuns = 2 })
	te.set("go", 1)
	runs, err := te.Jobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	te = te.restart()
	for _, r := range runs {
		got, err := te.Run(context.Background(), r.Serial)
		if err != nil {
			t.Fatal(err)
		}
		switch r.State {
		case whenlua.RunRunning:
			if got.State != whenlua.RunDone || got.Error != "stopped with the daemon" {
				t.Errorf("running run %d after stop: %s %q", r.Serial, got.State, got.Error)
			}
		case whenlua.RunQueued:
			if got.State != whenlua.RunCancelled || got.Error != "the daemon stopped before it started" {
				t.Errorf("queued run %d after stop: %s %q", r.Serial, got.State, got.Error)
			}
		default:
			t.Errorf("run %d listed as %s", r.Serial, r.State)
		}
	}
}

// A run that a failed commit puts back in the queue starts once the store
// takes commits again: the slot its step freed is not left idle.
func TestAQueuedRunStartsAfterAFailedCommitOfTheStepThatClaimedIt(t *testing.T) {
	gate, open := lockedGate(t)
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/q.lua", queueFile(2, gate))
	var fs *failingStore
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), -1, func(o *EngineOptions) {
		o.MaxRuns = 1
		fs = &failingStore{Store: o.Store}
		o.Store = fs
	})
	ctx := context.Background()
	if due := te.set("go", 1); len(due) != 2 {
		t.Fatalf("due %v, want q0001 and q0002", due)
	}
	fs.fail.Store(true)
	open() // q0001 ends; the step that records it and claims q0002 fails, and so does its retry
	te.waitFor("two failed commits: the step and its retry", func() bool { return fs.failed.Load() > 1 })
	fs.fail.Store(false)
	te.set("other", 1) // a step that commits
	te.waitFor("q0002 to run and the queue to drain", func() bool {
		runs, err := te.Jobs(ctx)
		return err == nil && len(runs) == 0 && len(te.runs("q0002")) == 1
	})
}

// A run that waited in the queue starts when it leaves it: its record's
// start (what log, jobs and post show) is that time, its duration is its
// process's, and the time it was made due is kept as queued.
func TestAQueuedRunStartsWhenItLeavesTheQueue(t *testing.T) {
	gate, open := lockedGate(t)
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/q.lua", queueFile(2, gate))
	clock := NewFakeClock(testEpoch)
	te := openTestEngineOpts(t, p, clock, -1, func(o *EngineOptions) { o.MaxRuns = 1 })
	if due := te.set("go", 1); len(due) != 2 {
		t.Fatalf("due %v, want q0001 and q0002", due)
	}
	if s := te.status(); s.Running != 1 || s.Queued != 1 {
		t.Errorf("status: %d running, %d queued; want 1 and 1", s.Running, s.Queued)
	}
	clock.Set(testEpoch.Add(time.Hour)) // q0002 waits an hour for q0001
	open()
	te.waitFor("both runs to end", func() bool { return len(te.runs("q0001")) == 1 && len(te.runs("q0002")) == 1 })
	first, second := te.runs("q0001")[0], te.runs("q0002")[0]
	if !first.Start.Equal(testEpoch) || !first.Queued.IsZero() {
		t.Errorf("q0001 started at %v (queued %v), want %v and never queued", first.Start, first.Queued, testEpoch)
	}
	if !second.Start.Equal(testEpoch.Add(time.Hour)) || !second.Queued.Equal(testEpoch) {
		t.Errorf("q0002 started at %v, queued at %v; want %v and %v", second.Start, second.Queued, testEpoch.Add(time.Hour), testEpoch)
	}
	if d := second.Duration(); d < 0 || d >= time.Hour {
		t.Errorf("q0002 lasted %v, want its process's time, not its wait", d)
	}
}
