package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/metricstest"
)

// hangUp is a node-to-node endpoint that reads each request and then
// drops the connection without an answer: a leader that dies after it
// received a call.
type hangUp struct {
	sets, gets atomic.Int64
}

func (h *hangUp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/set"):
		h.sets.Add(1)
	case strings.HasSuffix(r.URL.Path, "/get"):
		h.gets.Add(1)
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// openNode opens a node of cluster on the shared etcd, in a fresh home.
func openNode(t *testing.T, cluster, name string) *Node {
	t.Helper()
	return openNodeWith(t, cluster, name, nil)
}

// openNodeWith opens a node whose jobs directory holds jobs (file name ->
// source) from the start.
func openNodeWith(t *testing.T, cluster, name string, jobs map[string]string) *Node {
	t.Helper()
	return openNodeStore(t, cluster, name, jobs, Options{MaintainEvery: -1})
}

// openNodeStore opens a node as openNodeWith does, with store options so.
func openNodeStore(t *testing.T, cluster, name string, jobs map[string]string, so Options) *Node {
	t.Helper()
	p, err := whenlua.ResolvePaths(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	for f, src := range jobs {
		if err := os.WriteFile(filepath.Join(p.JobsDir, f), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n := NewNode(NodeOptions{Endpoints: sharedEtcd.Endpoints(), Cluster: cluster, Node: name, TTL: 2 * time.Second,
		Paths: p, Logger: quietLogger, Store: so})
	if err := n.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

// A follower sends a set to the leader once: when the leader received it
// and then stopped answering, the set may have been applied, so it is not
// sent again and its error says so. A read is sent again, until its
// context ends. Once the dead leader's candidacy is gone, the follower
// reaches the next leader (itself), and the set is applied once.
func TestAForwardedSetIsNeverSentTwiceButAReadIs(t *testing.T) {
	cluster := fmt.Sprintf("fwd%d", clusterSeq.Add(1))
	cli := newClient(t, sharedEtcd.Endpoints())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := &hangUp{}
	srv := &http.Server{Handler: fake}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	// The dead leader's candidacy, first in the election.
	lease, err := cli.Grant(context.Background(), 60)
	if err != nil {
		t.Fatal(err)
	}
	val, _ := json.Marshal(leaderInfo{Node: "dead", Addr: ln.Addr().String()})
	key := "/whenlua/" + cluster + "/c/election/" + fmt.Sprintf("%x", lease.ID)
	if _, err := cli.Put(context.Background(), key, string(val), clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}

	n := openNode(t, cluster, "n1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = n.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(1)}}})
	if err == nil || !strings.Contains(err.Error(), "may or may not have been applied") {
		t.Errorf("set through a leader that hangs up: %v, want an error saying it may have been applied", err)
	}
	if got := fake.sets.Load(); got != 1 {
		t.Errorf("the set reached the leader %d times, want once", got)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
	defer rcancel()
	if _, err := n.Get(rctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("get through a leader that hangs up: %v, want the context's end", err)
	}
	if got := fake.gets.Load(); got < 2 {
		t.Errorf("the get reached the leader %d times, want it sent again", got)
	}

	// The dead leader's lease goes: n1 is elected and answers.
	if _, err := cli.Revoke(context.Background(), lease.ID); err != nil {
		t.Fatal(err)
	}
	for {
		eng, _, _, changed := n.target()
		if eng != nil {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("n1 was not elected once the dead leader was gone")
		}
	}
	if _, err := n.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(2)}}}); err != nil {
		t.Fatalf("set once the dead leader is gone: %v", err)
	}
	hist, err := n.History(ctx, "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Value != whenlua.Int(2) {
		t.Errorf("history of x: %v, want the one set that was acknowledged", hist)
	}
	if got := fake.sets.Load(); got != 1 {
		t.Errorf("the dead leader received %d sets, want 1", got)
	}
	// The set and the get that no leader answered failed as forwarded
	// calls; those n1 answered itself were not forwarded.
	metricstest.Check(t, gather(t, n), []metricstest.Series{
		{Name: "whenlua_cluster_forwarded_calls_total", Labels: "result=failed", Want: 2},
		{Name: "whenlua_cluster_forwarded_calls_total", Labels: "result=answered", Want: 0},
	})
}
