package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitRun waits until n lists the run of job with cond true, among the
// running runs (running) or the finished ones.
func waitRun(t *testing.T, n *Node, job string, running bool, cond func(whenlua.Run) bool) whenlua.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var runs []whenlua.Run
		var err error
		if running {
			runs, err = n.Jobs(ctx)
		} else {
			runs, err = n.Log(ctx, job, 0)
		}
		if err != nil {
			t.Fatalf("runs on %s: %v", n.opts.Node, err)
		}
		for _, r := range runs {
			if r.Job == job && cond(r) {
				return r
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no run of %s as wanted on %s: %+v", job, n.opts.Node, runs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A run claimed by a follower goes on when the leader leaves: the next
// leader adopts it from its claim, and records its end, with its output
// and its node, when it comes.
func TestARunClaimedByANodeOutlivesTheLeaderThatOfferedIt(t *testing.T) {
	cluster := fmt.Sprintf("claims%d", clusterSeq.Add(1))
	gate := filepath.Join(t.TempDir(), "go")
	jobs := map[string]string{"gated.lua": fmt.Sprintf(`when(function() return changes("x") end,
	[[echo "on $JOBNAME"; while [ ! -e %s ]; do sleep 0.02; done; echo done]], { name = "gated", on = "n2" })`, gate)}
	n1 := openNodeWith(t, cluster, "n1", jobs)
	waitTarget(t, n1, true)
	n2 := openNodeWith(t, cluster, "n2", jobs)
	waitTarget(t, n2, false)
	set(t, n2, 1)
	run := waitRun(t, n1, "gated", true, func(r whenlua.Run) bool { return r.PID != 0 })
	if run.Node != "n2" {
		t.Fatalf("the run is on %q, want n2", run.Node)
	}
	// Followed through the leader, from the node that runs it: the first
	// line comes while the run waits for the gate.
	out := &syncBuffer{}
	tctx, tcancel := context.WithCancel(context.Background())
	tailed := make(chan error, 1)
	go func() { tailed <- n1.Tail(tctx, run.Serial, out) }()
	for !strings.Contains(out.String(), "on gated\n") {
		select {
		case err := <-tailed:
			t.Fatalf("the tail through the leader ended with %q: %v", out.String(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	tcancel()
	<-tailed
	waitTarget(t, n2, true)
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, n2, "gated", false, func(r whenlua.Run) bool { return r.Serial == run.Serial })
	if r.State != whenlua.RunDone || r.Code != 0 || r.Node != "n2" || r.PID != run.PID {
		t.Errorf("the adopted run: %s, exit %d (%s) on %q, pid %d; want done on n2, pid %d", r.State, r.Code, r.Error, r.Node, r.PID, run.PID)
	}
	full, err := n2.Run(ctx, run.Serial)
	if err != nil || string(full.Output) != "on gated\ndone\n" {
		t.Errorf("the adopted run's output: %q, %v", full.Output, err)
	}
}
