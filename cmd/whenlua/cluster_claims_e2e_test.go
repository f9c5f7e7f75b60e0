package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// others returns nodes without nodes[i].
func others(nodes []*node, i int) []*node {
	return append(append([]*node{}, nodes[:i]...), nodes[i+1:]...)
}

func TestClusterAJobRunsWhereItsOnOptionSays(t *testing.T) {
	t.Parallel()
	// Each run writes the directory it ran in: under the home of its node.
	jobs := `when(function() return changes("x") end, [[pwd > "$x"]], { name = "pinned", on = "n2" })
when(function() return changes("y") end, [[pwd > "$y"]], { name = "lead", on = "leader" })
when(function() return changes("z") end, [[pwd > "$z"]], { name = "nowhere", on = "n9" })
`
	_, nodes := startCluster(t, 1, 3, map[string]string{"where.lua": jobs})
	leader := waitCluster(t, nodes, 3)
	dir := t.TempDir()
	byHome := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, nd := range nodes {
			if strings.HasPrefix(strings.TrimSpace(string(b)), nd.dir) {
				return nd.name
			}
		}
		return "no node: " + string(b)
	}
	for i, nd := range nodes {
		// Set through each node in turn: where a set comes from changes
		// nothing.
		via := nodes[(i+1)%3]
		px, py := filepath.Join(dir, "x"+nd.name), filepath.Join(dir, "y"+nd.name)
		via.ok("set", "x="+px, "y="+py)
		for job, want := range map[string]string{"pinned": "n2", "lead": nodes[leader].name} {
			runs := via.waitAllRuns(job, i+1)
			if r := runs[0]; r.State != whenlua.RunDone || r.Node != want {
				t.Errorf("run %d of %s: %s on node %q (%s), want done on %s", r.Serial, job, r.State, r.Node, r.Error, want)
			}
		}
		if got := byHome(px); got != "n2" {
			t.Errorf("the pinned job ran on %s, want n2", got)
		}
		if got := byHome(py); got != nodes[leader].name {
			t.Errorf("the leader's job ran on %s, want %s", got, nodes[leader].name)
		}
	}
	if l := nodes[0].ok("log", "pinned", "-n", "1"); !strings.HasSuffix(l, "\ton n2\n") {
		t.Errorf("log does not name the node that ran the run: %q", l)
	}
	// A job for a node that is not live fails to start, and says why.
	nodes[0].ok("set", "z="+filepath.Join(dir, "z"))
	r := nodes[0].waitAllRuns("nowhere", 1)[0]
	if r.State != whenlua.RunFailed || !strings.Contains(r.Error, "no live node is named n9") {
		t.Errorf("a run for a node that is not there: %s (%s), want failed", r.State, r.Error)
	}
	if l := nodes[0].ok("log", "nowhere", "-n", "1"); !strings.HasSuffix(l, "\tfailed\tno live node is named n9 (the job's on option)\n") {
		t.Errorf("log does not say why the run failed: %q", l)
	}
}

func TestClusterARunOnADeadFollowerIsLostWhenItsLeaseExpires(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "attempts")
	pidFile := filepath.Join(t.TempDir(), "pid")
	etcd, nodes := startCluster(t, 1, 3, nil)
	leader := waitCluster(t, nodes, 3)
	// pinned runs on a follower only; work, on any node, is rerun by
	// whichever node claims it.
	n3 := nodes[(leader+1)%3]
	jobs := fmt.Sprintf(`when(function() return changes("p") end, [[sleep 60 & echo $! > %s; wait]], { name = "pinned", on = %q })
when(function() return changes("w") end, [[echo "$WHENLUA_ATTEMPT $WHENLUA_FIRST_SERIAL $JOBSERIAL $(pwd)" >> %s; sleep 60]], { name = "work", rerun_lost = true })
`, pidFile, n3.name, out)
	for _, nd := range nodes {
		nd.writeJob("lost.lua", jobs)
	}
	waitFor(t, "the leader to load the jobs", func() bool { return strings.Contains(nodes[leader].ok("names"), "pinned") })
	via := nodes[leader]
	via.ok("set", "p=1")
	pinned := via.waitRunning("pinned")
	if pinned.Node != n3.name {
		t.Fatalf("the pinned run is on %q, want %s", pinned.Node, n3.name)
	}
	killAndWait(t, n3.pid())
	// The leader lives on: it sees n3's claim lapse with its lease.
	r := via.runRecord(pinned.Serial)
	if want := "node " + n3.name + " stopped answering while it ran (its lease expired)"; r.State != whenlua.RunLost || r.Error != want {
		t.Errorf("the run on the killed follower: %s (%s), want lost: %s", r.State, r.Error, want)
	}
	// Its process outlived the node; the node, back, stops it.
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || processGone(orphan) {
		t.Fatalf("the run's process %q: %v, want it still running after its node was killed", b, err)
	}
	n3.startNode(etcd)
	waitFor(t, "the restarted node to stop its earlier run's process", func() bool { return processGone(orphan) })
	waitCluster(t, nodes, 3)
	killAndWait(t, n3.pid())

	// A run of a job with rerun_lost, lost with the node that ran it (the
	// leader or not), starts again on a node that lives.
	alive := others(nodes, indexOf(nodes, n3))
	via = alive[0]
	via.ok("set", "w=1")
	first := via.waitRunning("work")
	ran := nodeNamed(alive, first.Node)
	if ran == nil {
		t.Fatalf("the first run is on %q, not a live node", first.Node)
	}
	killAndWait(t, ran.pid())
	rest := others(alive, indexOf(alive, ran))[0]
	rerun := rest.waitRunningOtherThan("work", first.Serial)
	if rerun.Attempt != 2 || rerun.FirstSerial != first.Serial || rerun.Node != rest.name {
		t.Errorf("the rerun: attempt %d of the run %d on %s, want attempt 2 of %d on %s", rerun.Attempt, rerun.FirstSerial, rerun.Node, first.Serial, rest.name)
	}
	if r := rest.runRecord(first.Serial); r.State != whenlua.RunLost {
		t.Errorf("the run on the killed node: %s (%s), want lost", r.State, r.Error)
	}
	waitFor(t, "the rerun's line, from the node that lives", func() bool {
		b, _ := os.ReadFile(out)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(lines) == 2 && strings.HasPrefix(lines[1], fmt.Sprintf("2 %d %d %s", first.Serial, rerun.Serial, rest.dir))
	})
}

func TestClusterARunIsFollowedAndCancelledFromAnyNode(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "go")
	job := fmt.Sprintf(`when(function() return changes("x") end, [[echo first; while [ ! -e %s ]; do sleep 0.05; done; echo second]], { name = "gated", on = "n1" })
when(function() return changes("s") end, [[sleep 60]], { name = "slow", on = "n1" })
`, gate)
	_, nodes := startCluster(t, 1, 3, map[string]string{"gated.lua": job})
	leader := waitCluster(t, nodes, 3)
	// Followed through a node that does not run it (and, when n1 is the
	// leader, through a follower of it): the output comes from n1 as the
	// job writes it.
	via := nodes[2]
	if nodes[leader].name == "n3" {
		via = nodes[1]
	}
	via.ok("set", "x=1")
	run := via.waitRunning("gated")
	if run.Node != "n1" {
		t.Fatalf("the run is on %q, want n1", run.Node)
	}
	pr, pw := io.Pipe()
	tailed := make(chan error, 1)
	go func() {
		err := via.client().Tail(context.Background(), run.Serial, pw)
		pw.CloseWithError(err)
		tailed <- err
	}()
	lines := bufio.NewReader(pr)
	if l, err := lines.ReadString('\n'); l != "first\n" {
		t.Fatalf("tail's first line: %q, %v", l, err)
	}
	// The job waits for the gate: what tail showed came while it ran.
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(lines)
	if string(rest) != "second\n" || <-tailed != nil {
		t.Errorf("the rest of the tail: %q", rest)
	}
	if r := via.runRecord(run.Serial); r.State != whenlua.RunDone || r.Node != "n1" {
		t.Errorf("the followed run: %s on %q (%s), want done on n1", r.State, r.Node, r.Error)
	}
	if got := via.ok("output", fmt.Sprint(run.Serial)); got != "first\nsecond\n" {
		t.Errorf("output through %s: %q", via.name, got)
	}
	// Cancelled through a node that does not run it.
	via.ok("set", "s=1")
	slow := via.waitRunning("slow")
	if l := via.ok("jobs"); !strings.Contains(l, fmt.Sprintf("\t%d\tn1:%s", slow.PID, filepath.Join(nodes[0].dir, "state", "runs"))) {
		t.Errorf("jobs does not show the node and directory of the run: %q", l)
	}
	via.ok("cancel", fmt.Sprint(slow.Serial))
	if r := via.runRecord(slow.Serial); r.State != whenlua.RunDone || r.Signal != "terminated" || r.Error != "cancelled" || r.Node != "n1" {
		t.Errorf("the cancelled run: %s, signal %q (%s) on %q, want cancelled on n1", r.State, r.Signal, r.Error, r.Node)
	}
}

func indexOf(nodes []*node, nd *node) int {
	for i, n := range nodes {
		if n == nd {
			return i
		}
	}
	return -1
}

func nodeNamed(nodes []*node, name string) *node {
	for _, n := range nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}
