package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/metricstest"
)

// gather gathers n's metrics as a scrape of its daemon would, by family.
func gather(t *testing.T, n *Node) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := n.MetricsGatherer(context.Background()).Gather()
	if err != nil {
		t.Fatalf("gather the metrics of %s: %v", n.opts.Node, err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// waitTarget waits until n leads (lead) or knows another node as the
// leader (!lead).
func waitTarget(t *testing.T, n *Node, lead bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		eng, remote, _, changed := n.target()
		if lead && eng != nil || !lead && remote != nil {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("%s: no change to lead=%v", n.opts.Node, lead)
		}
	}
}

func set(t *testing.T, n *Node, v int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(v)}}}); err != nil {
		t.Fatalf("set x=%d through %s: %v", v, n.opts.Node, err)
	}
}

// A node's own series last as long as the node; the engine's are served
// while it leads, those of the current term, counted from 0 in each term.
func TestANodeServesItsOwnMetricsAndItsEnginesOfTheCurrentTerm(t *testing.T) {
	cluster := fmt.Sprintf("metrics%d", clusterSeq.Add(1))
	n1 := openNode(t, cluster, "n1")
	waitTarget(t, n1, true)
	set(t, n1, 1)
	metricstest.Check(t, gather(t, n1), []metricstest.Series{
		{Name: "whenlua_cluster_leader", Want: 1},
		{Name: "whenlua_cluster_terms_total", Want: 1},
		{Name: "whenlua_cluster_nodes", Want: 1},
		{Name: "whenlua_cluster_forwarded_calls_total", Labels: "result=answered", Want: 0},
		{Name: "whenlua_sets_total", Labels: "origin=cli", Want: 1},
		{Name: "whenlua_runs_running", Want: 0},
	})

	n2 := openNode(t, cluster, "n2")
	waitTarget(t, n2, false)
	set(t, n2, 2)
	f2 := gather(t, n2)
	metricstest.Check(t, f2, []metricstest.Series{
		{Name: "whenlua_cluster_leader", Want: 0},
		{Name: "whenlua_cluster_terms_total", Want: 0},
		{Name: "whenlua_cluster_nodes", Want: 2},
		{Name: "whenlua_cluster_forwarded_calls_total", Labels: "result=answered", Want: 1},
		{Name: "whenlua_cluster_forwarded_calls_total", Labels: "result=failed", Want: 0},
	})
	for _, name := range []string{"whenlua_sets_total", "whenlua_runs_running", "go_goroutines"} {
		if f2[name] != nil {
			t.Errorf("the follower n2 serves %s, want only its own series (the daemon adds go_* and process_*)", name)
		}
	}
	metricstest.Check(t, gather(t, n1), []metricstest.Series{
		{Name: "whenlua_sets_total", Labels: "origin=cli", Want: 2},
		{Name: "whenlua_cluster_nodes", Want: 2},
	})

	// n1 leaves: n2 leads, with an engine of its own whose counters start
	// at 0, and its forwarded calls still counted.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitTarget(t, n2, true)
	set(t, n2, 3)
	metricstest.Check(t, gather(t, n2), []metricstest.Series{
		{Name: "whenlua_cluster_leader", Want: 1},
		{Name: "whenlua_cluster_terms_total", Want: 1},
		{Name: "whenlua_cluster_nodes", Want: 1},
		{Name: "whenlua_cluster_forwarded_calls_total", Labels: "result=answered", Want: 1},
		{Name: "whenlua_sets_total", Labels: "origin=cli", Want: 1},
	})
}
