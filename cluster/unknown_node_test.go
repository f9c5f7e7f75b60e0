package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
)

// openNodeFaulty opens a node of cluster on the shared etcd, in a fresh home
// holding the job file job, with the store's test seam fault.
func openNodeFaulty(t *testing.T, cluster, name, job string, fault func(string, []kvOp) error) *Node {
	t.Helper()
	return openNodeStore(t, cluster, name, map[string]string{"count.lua": job},
		Options{MaintainEvery: -1, CallTimeout: 3 * time.Second, fault: fault})
}

// waitLeads waits until n leads, its engine open.
func waitLeads(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		eng, _, _, changed := n.target()
		if eng != nil {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("%s was not elected", n.opts.Node)
		}
	}
}

// waitRunEnded waits, following the key in etcd, until the run record of
// serial is in a final state, and returns it.
func waitRunEnded(t *testing.T, cli *clientv3.Client, k keys, serial uint64) whenlua.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ended := func(val []byte) (whenlua.Run, bool) {
		r, err := decodeRun(val)
		if err != nil {
			t.Fatalf("run %d: %v", serial, err)
		}
		return r, r.State != whenlua.RunRunning && r.State != whenlua.RunQueued
	}
	resp, err := cli.Get(ctx, k.runKey(serial))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 1 {
		if r, ok := ended(resp.Kvs[0].Value); ok {
			return r
		}
	}
	for wr := range cli.Watch(ctx, k.runKey(serial), clientv3.WithRev(resp.Header.Revision+1)) {
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				if r, ok := ended(ev.Kv.Value); ok {
					return r
				}
			}
		}
	}
	t.Fatalf("run %d did not end: %v", serial, ctx.Err())
	return whenlua.Run{}
}

// A leader whose commit of a set has an unknown outcome (etcd applied it,
// the reply was lost, and etcd could not be reached to settle it) fails
// that set with an error saying so, and ends its term. The next leader
// (the other node, or the same when it is alone) starts from what the
// store holds: the set's step is there whole, the serial its run took is
// not taken again, and the sets acknowledged before and after are each
// stored once, each with its own run, started once.
func TestALeaderWhoseCommitIsOfUnknownOutcomeEndsItsTerm(t *testing.T) {
	t.Run("the other node leads next", func(t *testing.T) { leaderOfUnknownOutcome(t, 2) })
	t.Run("the same node leads next", func(t *testing.T) { leaderOfUnknownOutcome(t, 1) })
}

// leaderTerm names the cluster leader's term: its election key and the
// key's create revision, which the leader's commits are fenced by.
func leaderTerm(t *testing.T, cli *clientv3.Client, cluster string) string {
	t.Helper()
	resp, err := cli.Get(context.Background(), "/whenlua/"+cluster+"/c/election/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("no leader: %v", err)
	}
	return fmt.Sprintf("%s@%d", resp.Kvs[0].Key, resp.Kvs[0].CreateRevision)
}

func leaderOfUnknownOutcome(t *testing.T, nodes int) {
	cluster := fmt.Sprintf("unknownnode%d", clusterSeq.Add(1))
	k := newKeys(cluster)
	out := filepath.Join(t.TempDir(), "runs")
	job := fmt.Sprintf(`when(function() return changes("x") end, [[echo "$JOBSERIAL $x" >> %s]], { name = "count" })`, out)
	lost := errors.New("connection lost")
	// The commit that stores x = 3 loses its reply, and every void write
	// after it is lost too.
	x3 := string(whenlua.Int(3).AppendBinary(nil))
	var hit atomic.Bool
	fault := func(p string, ops []kvOp) error {
		switch {
		case p == "reply" && !hit.Load() && slices.ContainsFunc(ops, func(o kvOp) bool { return o.Key == k.varKey("x") && string(o.Val) == x3 }):
			hit.Store(true)
			return lost
		case p == "void" && hit.Load():
			return lost
		}
		return nil
	}
	n1 := openNodeFaulty(t, cluster, "n1", job, fault)
	waitLeads(t, n1)
	var n2 *Node
	if nodes == 2 {
		n2 = openNodeFaulty(t, cluster, "n2", job, nil)
	}
	cli := newClient(t, sharedEtcd.Endpoints())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	set := func(v int64) error {
		_, err := n1.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(v)}}})
		return err
	}
	for v := int64(1); v <= 2; v++ {
		if err := set(v); err != nil {
			t.Fatalf("set x=%d: %v", v, err)
		}
		waitRunEnded(t, cli, k, uint64(v))
	}
	firstTerm := leaderTerm(t, cli, cluster)
	err := set(3)
	if !hit.Load() {
		t.Fatal("the commit of x=3 met no fault")
	}
	if err == nil || !strings.HasPrefix(err.Error(), "may or may not be stored: ") || !strings.Contains(err.Error(), ErrOutcomeUnknown.Error()) {
		t.Fatalf("set x=3: %v, want an error saying it may or may not be stored", err)
	}
	t.Logf("set x=3: %v", err)
	for v := int64(4); v <= 6; v++ {
		if err := set(v); err != nil {
			t.Fatalf("set x=%d: %v", v, err)
		}
	}
	if leaderTerm(t, cli, cluster) == firstTerm {
		t.Error("the sets after x=3 were acknowledged in the term of x=3")
	}
	// With two nodes the next term is n2's: n1's candidacy went with its
	// term, and it campaigns again behind n2.
	if n2 != nil {
		if eng, _, _, _ := n2.target(); eng == nil {
			t.Error("n2 does not lead after n1's term ended")
		}
	}

	s := openTest(t, Options{Cluster: cluster})
	hist, err := s.History("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	var xs []int64
	for _, h := range hist {
		xs = append(xs, h.Value.I)
	}
	// x=3 is stored (etcd applied it), once, though not acknowledged.
	if !slices.Equal(xs, []int64{6, 5, 4, 3, 2, 1}) {
		t.Errorf("history of x %v, want each set once", xs)
	}
	serial, err := s.Serial()
	if err != nil || serial != 6 {
		t.Errorf("serial %d, %v; want 6: one per set that made count due", serial, err)
	}
	runs, err := s.Runs("count", 0)
	if err != nil {
		t.Fatal(err)
	}
	var serials []uint64
	for _, r := range runs {
		serials = append(serials, r.Serial)
		want := whenlua.RunDone
		if r.Serial == 3 {
			// The run of x=3, made due in the step of unknown outcome,
			// never started: the next leader records it lost.
			want = whenlua.RunLost
		}
		if r := waitRunEnded(t, cli, k, r.Serial); r.State != want {
			t.Errorf("run %d: %s %s, want %s", r.Serial, r.State, r.Error, want)
		}
	}
	if !slices.Equal(serials, []uint64{6, 5, 4, 3, 2, 1}) {
		t.Errorf("run records %v, want one per serial", serials)
	}
	// Every run that started wrote its serial and the x it saw: a serial
	// taken twice would show two lines, or a run seeing another set's x.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	started := map[uint64]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("bad line %q", line)
		}
		serial, _ := strconv.ParseUint(f[0], 10, 64)
		x, _ := strconv.ParseInt(f[1], 10, 64)
		if _, dup := started[serial]; dup {
			t.Errorf("run %d started twice", serial)
		}
		started[serial] = x
		if serial != 3 && x != int64(serial) {
			t.Errorf("run %d saw x=%d: its serial was taken for another set", serial, x)
		}
	}
	for _, v := range []uint64{1, 2, 4, 5, 6} {
		if _, ok := started[v]; !ok {
			t.Errorf("run %d of an acknowledged set never started", v)
		}
	}
	t.Logf("runs started (serial: x): %v", started)
}
