package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
)

// A run's end whose commit is refused (etcd at its quota), then committed
// by a later step, has its keys deleted all the same: else they (and the
// node's run directory) stay while the leader leads.
func TestTheKeysOfARunWhoseEndIsCommittedByALaterStepAreDeleted(t *testing.T) {
	cluster := fmt.Sprintf("latecommit%d", clusterSeq.Add(1))
	k := newKeys(cluster)
	var armed atomic.Bool
	armed.Store(true)
	fault := func(p string, ops []kvOp) error {
		if p != "send" || !armed.Load() {
			return nil
		}
		for _, o := range ops {
			if o.Key == k.runKey(1) {
				if r, err := decodeRun(o.Val); err == nil && r.State == whenlua.RunDone {
					armed.Store(false)
					return rpctypes.ErrNoSpace
				}
			}
		}
		return nil
	}
	out := filepath.Join(t.TempDir(), "out")
	job := fmt.Sprintf(`when(function() return changes("x") end, [[echo $x >> %s]], { name = "count" })`, out)
	n1 := openNodeFaulty(t, cluster, "n1", job, fault)
	waitLeads(t, n1)
	cli := newClient(t, sharedEtcd.Endpoints())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	set := func(v int64) {
		if _, err := n1.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(v)}}}); err != nil {
			t.Fatalf("set x=%d: %v", v, err)
		}
	}
	set(1)
	for armed.Load() {
		select {
		case <-ctx.Done():
			t.Fatal("the end of run 1 met no fault")
		case <-time.After(20 * time.Millisecond):
		}
	}
	set(2)
	r1 := waitRunEnded(t, cli, k, 1)
	r2 := waitRunEnded(t, cli, k, 2)
	t.Logf("run 1 %s, run 2 %s", r1.State, r2.State)
	count := func(serial uint64) int64 {
		resp, err := cli.Get(ctx, n1.runKey(serial, ""), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count
	}
	for count(2) != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the keys of run 2 stay")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if c := count(1); c != 0 {
		t.Errorf("run 1 is recorded %s, and %d of its keys stay in etcd (run 2's went)", r1.State, c)
	}
}
