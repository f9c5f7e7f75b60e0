package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/whenlua/whenlua/host"
)

// faultKV applies the first transaction, then ends the worker's context
// (its session's keep-alive failed): lost says whether the reply is lost
// too (the caller sees the context's error).
type faultKV struct {
	clientv3.KV
	mu     sync.Mutex
	fired  bool
	lost   bool
	cancel context.CancelFunc
}

func (k *faultKV) Txn(ctx context.Context) clientv3.Txn {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fired {
		return k.KV.Txn(ctx)
	}
	k.fired = true
	return &faultTxn{Txn: k.KV.Txn(context.Background()), k: k}
}

type faultTxn struct {
	clientv3.Txn
	k *faultKV
}

func (t *faultTxn) If(c ...clientv3.Cmp) clientv3.Txn  { t.Txn = t.Txn.If(c...); return t }
func (t *faultTxn) Then(o ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(o...); return t }
func (t *faultTxn) Else(o ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(o...); return t }
func (t *faultTxn) Commit() (*clientv3.TxnResponse, error) {
	resp, err := t.Txn.Commit()
	t.k.cancel()
	if t.k.lost {
		return nil, context.Canceled
	}
	return resp, err
}

// claimWithFault has a node claim an offer through a client whose first
// transaction (the claim) is applied as the worker's context ends; the
// session's lease lives on, as after a resume.
func claimWithFault(t *testing.T, lost bool) (*Node, *concurrency.Session, uint64) {
	cluster := fmt.Sprintf("claimfault%d", clusterSeq.Add(1))
	n := openNode(t, cluster, "n1")
	waitTarget(t, n, true)
	cli, err := clientv3.New(clientv3.Config{Endpoints: sharedEtcd.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := &Node{opts: n.opts, log: n.log, prefix: n.prefix, cli: cli, runner: n.runner,
		local: map[uint64]*localRun{}, claiming: map[uint64]bool{}, lostLeases: map[clientv3.LeaseID]bool{}}
	o := offer{Serial: 77, Job: "x", On: "nowhere", Script: "sleep 3", Shell: "/bin/sh"}
	val, _ := json.Marshal(o)
	if _, err := cli.Put(context.Background(), m.runKey(77, "due"), string(val)); err != nil {
		t.Fatal(err)
	}
	cli.KV = &faultKV{KV: cli.KV, lost: lost, cancel: cancel}
	m.claim(ctx, sess, o)
	return m, sess, 77
}

// A claim applied while the worker's context ended (reply lost) under a
// lease that lives on must be run or released: else the run stays running
// until the node dies, and nothing runs it.
func TestAClaimOfUnknownOutcomeAsTheSessionEndsIsNotLeftHeld(t *testing.T) {
	m, sess, serial := claimWithFault(t, true)
	resp, err := m.cli.Get(context.Background(), m.runKey(serial, ""), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	held, done := false, false
	for _, kv := range resp.Kvs {
		switch string(kv.Key) {
		case m.runKey(serial, "claim"):
			held = clientv3.LeaseID(kv.Lease) == sess.Lease()
		case m.runKey(serial, "done"):
			done = true
		}
	}
	m.lmu.Lock()
	local := m.local[serial] != nil
	m.lmu.Unlock()
	if held && !done && !local {
		t.Errorf("the claim is held under the live lease, no end is written and nothing runs the run: it stays running while the node lives")
	}
}

// A run claimed as the worker's context ends, its lease resumed, is not
// cancelled: its claim holds, and nobody asked it to stop.
func TestARunClaimedAsTheSessionResumesIsNotCancelled(t *testing.T) {
	m, _, serial := claimWithFault(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		resp, err := m.cli.Get(ctx, m.runKey(serial, "done"))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 1 {
			var er endRecord
			if err := json.Unmarshal(resp.Kvs[0].Value, &er); err != nil {
				t.Fatal(err)
			}
			if er.Result.Cancelled {
				t.Errorf("the run was cancelled though its claim holds: %+v", er.Result)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no end")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A resync (after a compaction) that reads the runs while a run's offer is
// on its way (tracked by Start, not yet put) records that run lost; the
// offer then lands and a node claims and runs it.
func TestAResyncDuringAnOfferDoesNotRecordItLost(t *testing.T) {
	cluster := fmt.Sprintf("claimfault%d", clusterSeq.Add(1))
	n := openNode(t, cluster, "n1")
	waitTarget(t, n, true)
	fence := clientv3.Compare(clientv3.CreateRevision(n.key("nothing")), "=", 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := n.newDispatcher(ctx, fence)
	ended := make(chan string, 1)
	serial := uint64(5000)
	r := d.track(serial, "any", host.ExecEvents{Done: func(e host.Ended) { ended <- e.Lost }})
	r.offering = true
	// Start tracked the run; the compacted watch's resync reads now.
	if _, err := d.resync(); err != nil {
		t.Fatal(err)
	}
	val, _ := json.Marshal(offer{Serial: serial, Job: "x", On: "any", Script: "true", Shell: "/bin/sh"})
	if err := d.putOffer(ctx, serial, string(val)); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.offering = false
	r.mu.Unlock()
	// The leader's node claims it: taken appears.
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	for {
		resp, err := n.cli.Get(wctx, n.runKey(serial, "taken"))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 1 {
			break
		}
		select {
		case <-wctx.Done():
			t.Fatal("the offer was never claimed")
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case lost := <-ended:
		t.Errorf("the run ended (lost: %q) while its offer was being put, and was then claimed", lost)
	default:
	}
}
