package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/whenlua/whenlua/internal/etcdtest"
	"github.com/whenlua/whenlua/internal/metricstest"
)

// Every node of a cluster serves /metrics at its --metrics: its own series
// (whenlua_cluster_*), and on the leader the engine's, which count a set
// made through a follower and the run it triggered.
func TestClusterMetricsServedByEveryNodeCountOnTheLeader(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t, 1)
	var nodes []*node
	for i := range 2 {
		nd := &node{home: newHome(t), name: fmt.Sprintf("n%d", i+1)}
		nd.writeJob("count.lua", `when(function() return changes("x") end, "true", { name = "count" })`)
		nd.startNode(etcd, "--metrics=127.0.0.1:0")
		nodes = append(nodes, nd)
	}
	li := waitCluster(t, nodes, 2)
	leader, follower := nodes[li], nodes[1-li]
	addrs := map[*node]string{}
	for _, nd := range nodes {
		addr := nd.status().Metrics
		if addr == "" || strings.HasSuffix(addr, ":0") {
			t.Fatalf("status on %s gives the metrics address %q, want the one bound", nd.name, addr)
		}
		if out := nd.ok("status"); !strings.Contains(out, "metrics:  http://"+addr+"/metrics") {
			t.Errorf("status on %s does not show its metrics address %s:\n%s", nd.name, addr, out)
		}
		addrs[nd] = addr
	}
	if addrs[leader] == addrs[follower] {
		t.Fatalf("both nodes show the metrics address %s, want each its own", addrs[leader])
	}

	follower.ok("set", "x=1")
	follower.waitAllRuns("count", 1)

	metricstest.Check(t, scrape(t, addrs[leader]), []metricstest.Series{
		{Name: "whenlua_cluster_leader", Want: 1},
		{Name: "whenlua_cluster_nodes", Want: 2},
		{Name: "whenlua_cluster_terms_total", Want: 1},
		{Name: "whenlua_sets_total", Labels: "origin=cli", Want: 1},
		{Name: "whenlua_runs_started_total", Labels: "job=count", Want: 1},
		{Name: "whenlua_runs_finished_total", Labels: "job=count,result=success", Want: 1},
		{Name: "whenlua_job_file_load_error", Labels: "file=count.lua", Want: 0},
	})
	ff := scrape(t, addrs[follower])
	metricstest.Check(t, ff, []metricstest.Series{
		{Name: "whenlua_cluster_leader", Want: 0},
		{Name: "whenlua_cluster_nodes", Want: 2},
		{Name: "whenlua_cluster_terms_total", Want: 0},
	})
	// The follower forwarded the set and the commands above; it runs no
	// engine, so it has none of the engine's series.
	if v, ok := sample(ff, "whenlua_cluster_forwarded_calls_total", "result=answered"); !ok || v < 2 {
		t.Errorf("the follower forwarded %v calls that were answered (present %v), want the set and the log at least", v, ok)
	}
	for _, name := range []string{"whenlua_sets_total", "whenlua_runs_running", "whenlua_job_file_load_error"} {
		if ff[name] != nil {
			t.Errorf("the follower serves %s, an engine's series", name)
		}
	}
	if _, ok := sample(ff, "go_goroutines", ""); !ok {
		t.Error("the follower does not serve go_goroutines")
	}

	// An address in use fails the start of a node, as of one daemon.
	other := &node{home: newHome(t), name: "n3"}
	other.fails(1, []string{"daemon", "start", "--etcd", strings.Join(etcd.Endpoints(), ","), "--cluster", "test", "--node", "n3",
		"--metrics=" + addrs[leader]}, "--metrics", "address already in use")
}
