package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host"
)

// A follower that stops while it runs a run stops the run and reports its
// end, which the leader records as stopped with that node.
func TestANodeThatStopsStopsItsRunsAndTheLeaderRecordsThem(t *testing.T) {
	cluster := fmt.Sprintf("stopnode%d", clusterSeq.Add(1))
	jobs := map[string]string{"slow.lua": `when(function() return changes("x") end, [[sleep 60]], { name = "slow", on = "n2" })`}
	n1 := openNodeWith(t, cluster, "n1", jobs)
	waitTarget(t, n1, true)
	n2 := openNodeWith(t, cluster, "n2", jobs)
	waitTarget(t, n2, false)
	set(t, n1, 1)
	run := waitRun(t, n1, "slow", true, func(r whenlua.Run) bool { return r.PID != 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, n1, "slow", false, func(r whenlua.Run) bool { return r.Serial == run.Serial })
	if r.State != whenlua.RunDone || r.Signal != "terminated" || r.Error != "stopped with node n2" {
		t.Errorf("the run of the node that stopped: %s (%q), want %q", r.State, r.Error, "stopped with node n2")
	}
}

// The keys of a run whose end the engine commits as its term ends (the
// drain in Engine.Close, a commit just before a step-down) are deleted
// all the same: the delete is fenced, not bound to the term.
func TestTheKeysOfARunRecordedAsTheTermEndsAreDeleted(t *testing.T) {
	cluster := fmt.Sprintf("cleanup%d", clusterSeq.Add(1))
	n := openNode(t, cluster, "n1")
	waitTarget(t, n, true)
	cli := n.cli
	// A fence that holds (the leadership is still held during a graceful
	// step-down: resign comes after the engine closed).
	fence := clientv3.Compare(clientv3.CreateRevision(n.key("nothing")), "=", 0)
	for _, cancelFirst := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		d := n.newDispatcher(ctx, fence)
		serial := uint64(1000)
		if cancelFirst {
			serial = 1001
		}
		for _, part := range []string{"due", "taken", "claim", "done"} {
			if _, err := cli.Put(context.Background(), n.runKey(serial, part), "{}"); err != nil {
				t.Fatal(err)
			}
		}
		r := d.track(serial, "any", host.ExecEvents{Done: func(host.Ended) {}})
		if cancelFirst {
			cancel() // the term ended (lctx), as it does before eng.Close
		}
		r.Cleanup()
		deadline := time.Now().Add(20 * time.Second)
		left := int64(-1)
		for time.Now().Before(deadline) {
			resp, err := cli.Get(context.Background(), n.runKey(serial, ""), clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			left = resp.Count
			if left == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("cancelled before Cleanup=%v: %d keys left", cancelFirst, left)
		if left != 0 {
			t.Errorf("cancelled before Cleanup=%v: %d keys of a recorded run left in etcd", cancelFirst, left)
		}
		cancel()
	}
}

// A dispatcher whose watch starts from a compacted revision reads the runs
// anew and watches from there: a claim put after that reaches it.
func TestACompactedWatchOfTheRunsGoesOnFromWhatItReads(t *testing.T) {
	cluster := fmt.Sprintf("compacted%d", clusterSeq.Add(1))
	n := openNode(t, cluster, "n1")
	waitTarget(t, n, true)
	cli := n.cli
	resp, err := cli.Put(context.Background(), n.key("scratch"), "1")
	if err != nil {
		t.Fatal(err)
	}
	old := resp.Header.Revision
	for i := 0; i < 3; i++ {
		if resp, err = cli.Put(context.Background(), n.key("scratch"), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := n.newDispatcher(ctx, clientv3.Compare(clientv3.CreateRevision(n.key("nothing")), "=", 0))
	started := make(chan string, 1)
	d.track(9, "any", host.ExecEvents{Done: func(host.Ended) {}, Started: func(_ int, _, node string) { started <- node }})
	d.rev = old
	close(d.ready)
	go d.watch()
	// A claim read by the resync, or seen by the watch after it: either
	// way it reaches the run.
	if _, err := cli.Put(context.Background(), n.runKey(9, "claim"), `{"node":"n7"}`); err != nil {
		t.Fatal(err)
	}
	select {
	case node := <-started:
		if node != "n7" {
			t.Errorf("claimed by %q, want n7", node)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("the claim never reached the run: the watch did not go on after the compaction")
	}
	cancel()
	<-d.done
}

// A run whose claim lapsed while the watch was away, in a window since
// compacted, is ended lost when the runs are read anew.
func TestAClaimLapsedInACompactedWindowEndsItsRunLost(t *testing.T) {
	cluster := fmt.Sprintf("lapsed%d", clusterSeq.Add(1))
	n := openNode(t, cluster, "n1")
	waitTarget(t, n, true)
	cli := n.cli
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := n.newDispatcher(ctx, clientv3.Compare(clientv3.CreateRevision(n.key("nothing")), "=", 0))
	ended := make(chan host.Ended, 1)
	r := d.track(7, "any", host.ExecEvents{Done: func(e host.Ended) { ended <- e }})
	if _, err := cli.Put(context.Background(), n.runKey(7, "taken"), `{"node":"n9"}`); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Put(context.Background(), n.runKey(7, "claim"), `{"node":"n9"}`)
	if err != nil {
		t.Fatal(err)
	}
	from := resp.Header.Revision - 1 // the watch last saw the offer
	r.mu.Lock()
	r.claimed = true
	r.claim.Node = "n9"
	r.mu.Unlock()
	// The claim lapses (its lease expired) while the watch is away.
	resp2, err := cli.Delete(context.Background(), n.runKey(7, "claim"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(context.Background(), resp2.Header.Revision); err != nil {
		t.Fatal(err)
	}
	d.rev = from
	close(d.ready)
	go d.watch()
	select {
	case e := <-ended:
		if want := "node n9 stopped answering while it ran (its lease expired)"; e.Lost != want {
			t.Errorf("the run whose claim lapsed ended %+v, want lost: %s", e, want)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the run whose claim lapsed was never ended (left running)")
	}
	cancel()
	<-d.done
}
