package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// benchSets measures `set` through a node's socket: each op is one set
// acknowledged once the leader's fenced transaction committed it.
func benchSets(b *testing.B, members int, viaLeader bool, name string) {
	_, nodes := startCluster(b, members, 3, map[string]string{"count.lua": counterJob(filepath.Join(b.TempDir(), "ran"))})
	leader := waitCluster(b, nodes, 3)
	nd := nodes[(leader+1)%3]
	if viaLeader {
		nd = nodes[leader]
	}
	c := whenlua.Dial(filepath.Join(nd.dir, "whenlua.sock"))
	defer c.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, err := c.Set(context.Background(), whenlua.SetRequest{Mode: whenlua.ModeSet,
			Assignments: []whenlua.Assignment{{Name: name, Value: whenlua.Int(int64(i))}}}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkClusterSet is one client's sets through the leader or a follower
// (forwarded over the node-to-node endpoint), on a 1- and a 3-member etcd,
// of a variable that triggers nothing and of one that triggers a run.
func BenchmarkClusterSet(b *testing.B) {
	for _, members := range []int{1, 3} {
		for _, via := range []string{"leader", "follower"} {
			for _, name := range []string{"y", "x"} {
				what := map[string]string{"y": "none", "x": "one"}[name]
				b.Run(fmt.Sprintf("etcd=%d/via=%s/runs=%s", members, via, what), func(b *testing.B) { benchSets(b, members, via == "leader", name) })
			}
		}
	}
}

// BenchmarkClusterFailover measures, for each op, a leader killed with
// SIGKILL until the next set through a survivor is acknowledged (lease TTL
// testTTL); the killed node is started again between ops, untimed.
func BenchmarkClusterFailover(b *testing.B) {
	etcd, nodes := startCluster(b, 1, 3, map[string]string{"count.lua": counterJob(filepath.Join(b.TempDir(), "ran"))})
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		leader := waitCluster(b, nodes, 3)
		survivor := nodes[(leader+1)%3]
		c := whenlua.Dial(filepath.Join(survivor.dir, "whenlua.sock"))
		pid := nodes[leader].pid()
		b.StartTimer()
		t0 := time.Now()
		killAndWait(b, pid)
		if _, err := c.Set(context.Background(), whenlua.SetRequest{Mode: whenlua.ModeSet,
			Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(int64(i))}}}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		c.Close()
		nodes[leader].startNode(etcd)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
}

// BenchmarkClusterExactlyOnce spreads b.N sets over three nodes, each
// triggering one run, three clients at once, and fails unless every
// acknowledged set gave exactly one run (-benchtime 999x: the 1,000 sets of
// the acceptance test).
func BenchmarkClusterExactlyOnce(b *testing.B) {
	out := filepath.Join(b.TempDir(), "ran")
	_, nodes := startCluster(b, 1, 3, map[string]string{"count.lua": counterJob(out)})
	per := max(b.N/3, 1)
	var s setter
	done := make(chan struct{})
	b.ResetTimer()
	for i, nd := range nodes {
		go func() {
			defer func() { done <- struct{}{} }()
			s.run(nd, fmt.Sprintf("n%d", i+1), per, nil)
		}()
	}
	for range nodes {
		<-done
	}
	runs := nodes[0].waitAllRuns("count", 3*per)
	b.StopTimer()
	if s.errs != 0 || len(s.bad) != 0 || len(s.acked) != 3*per {
		b.Fatalf("%d sets acknowledged, %d failed, %v", len(s.acked), s.errs, s.bad)
	}
	ran := ranSerials(b, out)
	if len(runs) != 3*per || len(ran) != 3*per {
		b.Fatalf("%d sets, %d run records, %d runs ran", 3*per, len(runs), len(ran))
	}
	b.ReportMetric(float64(3*per), "sets")
}
