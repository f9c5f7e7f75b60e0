package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/etcdtest"
)

// testTTL is the lease of the test nodes: a dead node loses its
// leadership and its runs this long after.
const testTTL = "2s"

// node is one whenlua daemon of a test cluster, in a home of its own.
type node struct {
	*home
	name string
}

// startCluster starts etcd (members members) and n whenlua daemons on it,
// each with jobs (file name -> source) in its jobs directory, and waits
// until they see each other and a leader.
func startCluster(t testing.TB, members, n int, jobs map[string]string) (*etcdtest.Cluster, []*node) {
	t.Helper()
	etcd := etcdtest.Start(t, members)
	var nodes []*node
	for i := range n {
		nd := &node{home: newHome(t), name: fmt.Sprintf("n%d", i+1)}
		for f, src := range jobs {
			nd.writeJob(f, src)
		}
		nd.startNode(etcd)
		nodes = append(nodes, nd)
	}
	waitCluster(t, nodes, n)
	return etcd, nodes
}

// startNode starts the node's daemon on etcd with `daemon start` and
// the flags more.
func (nd *node) startNode(etcd *etcdtest.Cluster, more ...string) int {
	nd.t.Helper()
	return nd.start(append([]string{"--etcd", strings.Join(etcd.Endpoints(), ","), "--cluster", "test", "--node", nd.name, "--lease-ttl", testTTL}, more...)...)
}

// clusterStatus is `whenlua status --json`'s cluster part on nd.
func (nd *node) clusterStatus() whenlua.ClusterStatus {
	nd.t.Helper()
	var st whenlua.Status
	out := nd.ok("status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Cluster == nil {
		nd.t.Fatalf("status --json on %s: no cluster in %q (%v)", nd.name, out, err)
	}
	return *st.Cluster
}

// waitCluster waits until every node sees n live nodes and one leader, the
// same for all, and returns the leader's index.
func waitCluster(t testing.TB, nodes []*node, n int) int {
	t.Helper()
	leader := -1
	waitFor(t, fmt.Sprintf("%d live nodes and a leader", n), func() bool {
		name := ""
		for _, nd := range nodes {
			if nd.pid() == 0 {
				continue
			}
			cs := nd.clusterStatus()
			if len(cs.Nodes) != n || cs.Leader == "" || (name != "" && cs.Leader != name) {
				return false
			}
			name = cs.Leader
		}
		for i, nd := range nodes {
			if nd.name == name {
				leader = i
			}
		}
		return leader >= 0
	})
	return leader
}

// counterJob is a when-job that appends its serial to out at each change
// of x, run by any node, and a slow job that holds a run in flight on the
// leader while slow changes.
// (A run sees the variables as they are when it starts, not as the set
// that triggered it left them: the serial, not $x, tells runs apart.)
func counterJob(out string) string {
	return fmt.Sprintf(`when(function() return changes("x") end, [[echo "$JOBSERIAL" >> %s]], { name = "count" })
when(function() return changes("slow") end, [[sleep 60]], { name = "slow", on = "leader" })
`, out)
}

// setter sets x to distinct values through one node until stopped, and
// remembers the values acknowledged.
type setter struct {
	mu    sync.Mutex
	acked []string
	errs  int
	bad   []string // acknowledged sets that did not trigger count
}

func (s *setter) run(nd *node, prefix string, n int, stop <-chan struct{}) {
	c := whenlua.Dial(filepath.Join(nd.dir, "whenlua.sock"))
	defer c.Close()
	for i := range n {
		select {
		case <-stop:
			return
		default:
		}
		v := fmt.Sprintf("%s-%d", prefix, i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		resp, err := c.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.String(v)}}})
		cancel()
		s.mu.Lock()
		switch {
		case err != nil:
			s.errs++
		case len(resp.Triggered) != 1 || resp.Triggered[0] != "count":
			s.bad = append(s.bad, fmt.Sprintf("x=%s triggered %v", v, resp.Triggered))
		default:
			s.acked = append(s.acked, v)
		}
		s.mu.Unlock()
	}
}

// ranSerials reads the serials the count job appended, failing t for a
// serial that ran twice.
func ranSerials(t testing.TB, path string) map[uint64]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bool{}
	for _, line := range strings.Fields(string(b)) {
		s, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Fatalf("%s: bad line %q", path, line)
		}
		if out[s] {
			t.Errorf("run %d ran twice", s)
		}
		out[s] = true
	}
	return out
}

// historyValues returns every stored version of x, as `whenlua history`
// on nd lists them.
func historyValues(nd *node) map[string]bool {
	nd.t.Helper()
	var vs []whenlua.Version
	if err := json.Unmarshal([]byte(nd.ok("history", "x", "--json")), &vs); err != nil {
		nd.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, v := range vs {
		out[v.Value.String()] = true
	}
	return out
}

// storedAcked returns every stored version of x, as historyValues does,
// and fails t for each acknowledged set that is not among them (0 lost).
func storedAcked(t *testing.T, nd *node, acked []string) map[string]bool {
	t.Helper()
	stored := historyValues(nd)
	for _, v := range acked {
		if !stored[v] {
			t.Errorf("the set x=%s was acknowledged but is not in the history", v)
		}
	}
	return stored
}

func TestClusterEveryAcknowledgedSetRunsItsJobOnceWhicheverNodeTakesIt(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "ran")
	_, nodes := startCluster(t, 1, 3, map[string]string{"count.lua": counterJob(out)})

	// 1,000 sets, 334, 333 and 333 through the three nodes at once.
	const total = 1000
	var s setter
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(nd, fmt.Sprintf("n%d", i+1), total/3+min(1, max(0, total%3-i)), nil)
		}()
	}
	wg.Wait()
	if s.errs != 0 || len(s.bad) != 0 || len(s.acked) != total {
		t.Fatalf("%d sets acknowledged, %d failed, %v; want all %d acknowledged, each triggering count", len(s.acked), s.errs, s.bad, total)
	}
	// Each acknowledged set is one version of x and triggered one run; so
	// many runs, each run once, is each set's run exactly once.
	stored := storedAcked(t, nodes[2], s.acked)
	if len(stored) != total {
		t.Errorf("%d versions of x stored, want %d", len(stored), total)
	}
	runs := nodes[1].waitAllRuns("count", total)
	if len(runs) != total {
		t.Errorf("%d runs of count, want %d", len(runs), total)
	}
	// The runs went to every node, and each is recorded with its node.
	onNode := map[string]int{}
	for _, r := range runs {
		onNode[r.Node]++
	}
	t.Logf("runs by node: %v", onNode)
	for _, nd := range nodes {
		if onNode[nd.name] == 0 {
			t.Errorf("no run on %s: %v", nd.name, onNode)
		}
	}
	ran := ranSerials(t, out)
	for _, r := range runs {
		if r.State != whenlua.RunDone || r.Code != 0 || !ran[r.Serial] {
			t.Errorf("run %d: %s, exit %d (%s), ran: %v", r.Serial, r.State, r.Code, r.Error, ran[r.Serial])
		}
	}
	if len(ran) != total {
		t.Errorf("%d runs wrote their serial, want %d", len(ran), total)
	}
}

func TestClusterStatusShowsTheNodesTheLeaderAndJobFilesThatDiffer(t *testing.T) {
	t.Parallel()
	etcd, nodes := startCluster(t, 1, 3, map[string]string{"a.lua": `when("x == 1", [[echo "hello $x"; sleep 1; echo bye]], { name = "a" })`})
	leader := waitCluster(t, nodes, 3)
	follower := nodes[(leader+1)%3]
	cs := follower.clusterStatus()
	if cs.Name != "test" || cs.Node != follower.name || cs.Leader != nodes[leader].name {
		t.Errorf("status on %s: cluster %q, node %q, leader %q", follower.name, cs.Name, cs.Node, cs.Leader)
	}
	if strings.Join(cs.Endpoints, ",") != strings.Join(etcd.Endpoints(), ",") {
		t.Errorf("status shows etcd %v, want %v", cs.Endpoints, etcd.Endpoints())
	}
	for _, n := range cs.Nodes {
		if n.Differs || len(n.Files) != 1 || n.PID == 0 || n.Addr == "" {
			t.Errorf("node %+v: want the same one job file as the leader, a pid and an address", n)
		}
	}
	// A follower's job file edited: the status on any node flags it.
	follower.writeJob("a.lua", `when("x == 2", [[echo "hello $x"; sleep 1; echo bye]], { name = "a" })`)
	waitFor(t, "the edited follower to be flagged", func() bool {
		for _, n := range nodes[leader].clusterStatus().Nodes {
			if n.Name == follower.name {
				return n.Differs
			}
		}
		return false
	})
	text := follower.ok("status")
	for _, want := range []string{"cluster:  test, node " + follower.name + ", leader " + nodes[leader].name, "etcd:     " + etcd.Endpoints()[0],
		"nodes:    3 alive", follower.name + "\tfollower", "JOB FILES DIFFER FROM THE LEADER'S"} {
		if !strings.Contains(text, want) {
			t.Errorf("status on %s does not say %q:\n%s", follower.name, want, text)
		}
	}
	// The node-to-node endpoint serves only the cluster's nodes.
	for _, tok := range []string{"", "wrong"} {
		c := whenlua.DialNode(cs.Nodes[leader].Addr, tok)
		_, err := c.Vars(context.Background())
		c.Close()
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("vars on the leader's endpoint with the token %q: %v, want permission denied", tok, err)
		}
	}
	// Every command works on a follower: it reaches the leader's engine.
	follower.ok("set", "--type", "int", "x=1")
	if got := nodes[(leader+2)%3].ok("get", "x"); got != "1\n" {
		t.Errorf("get x on another follower: %q, want 1", got)
	}
	names := follower.ok("names")
	if !strings.Contains(names, "a") {
		t.Errorf("names on a follower: %q", names)
	}
	// A run started through one follower is followed, listed and read
	// through the other.
	other := nodes[(leader+2)%3]
	run := follower.startJob("a")
	if got := other.ok("tail", strconv.FormatUint(run.Serial, 10)); got != "hello 1\nbye\n" {
		t.Errorf("tail %d on another follower: %q", run.Serial, got)
	}
	if got := other.ok("output", strconv.FormatUint(run.Serial, 10)); got != "hello 1\nbye\n" {
		t.Errorf("output %d on another follower: %q", run.Serial, got)
	}
	if r := other.runRecord(run.Serial); r.State != whenlua.RunDone || r.Code != 0 {
		t.Errorf("log on another follower: run %d %s, exit %d", r.Serial, r.State, r.Code)
	}
}

// waitAllRuns waits until job has n finished runs and returns them all.
func (h *home) waitAllRuns(job string, n int) []whenlua.Run {
	h.t.Helper()
	var runs []whenlua.Run
	waitFor(h.t, fmt.Sprintf("%d runs of %s", n, job), func() bool {
		runs = h.allRuns(job)
		return len(runs) >= n
	})
	return runs
}

// allRuns returns every finished run of job, newest first.
func (h *home) allRuns(job string) []whenlua.Run {
	h.t.Helper()
	var runs []whenlua.Run
	if err := json.Unmarshal([]byte(h.ok("log", job, "-n", "100000", "--json")), &runs); err != nil {
		h.t.Fatal(err)
	}
	return runs
}

// waitRunning waits until a run of job runs with a pid, as jobs on nd
// shows it, and returns it.
func (nd *node) waitRunning(job string) whenlua.Run {
	nd.t.Helper()
	return nd.waitRunningOtherThan(job, 0)
}

// waitRunningOtherThan waits as waitRunning does for a run of job other
// than the run serial (a rerun of it, say).
func (nd *node) waitRunningOtherThan(job string, serial uint64) whenlua.Run {
	nd.t.Helper()
	var run whenlua.Run
	waitFor(nd.t, "a run of "+job+" with a pid", func() bool {
		for _, r := range nd.runsJSON("jobs") {
			if r.Job == job && r.Serial != serial && r.PID != 0 {
				run = r
				return true
			}
		}
		return false
	})
	return run
}

// runRecord returns run serial's record as `whenlua log` on nd lists it,
// once it is finished.
func (nd *node) runRecord(serial uint64) whenlua.Run {
	nd.t.Helper()
	var run whenlua.Run
	waitFor(nd.t, fmt.Sprintf("run %d to be recorded as finished", serial), func() bool {
		for _, r := range nd.allRuns("") {
			if r.Serial == serial {
				run = r
				return true
			}
		}
		return false
	})
	return run
}

func TestClusterKillingTheLeaderLosesNoAcknowledgedSetAndRunsNothingTwice(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "ran")
	_, nodes := startCluster(t, 1, 3, map[string]string{"count.lua": counterJob(out)})
	leader := waitCluster(t, nodes, 3)
	var survivors []*node
	for i, nd := range nodes {
		if i != leader {
			survivors = append(survivors, nd)
		}
	}
	// A run in flight on the leader when it dies.
	survivors[0].ok("set", "slow=1")
	slow := survivors[0].waitRunning("slow")

	const perNode = 150
	var s setter
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var stopAt <-chan struct{}
			if i == leader {
				stopAt = stop // its socket dies with it
			}
			s.run(nd, fmt.Sprintf("n%d", i+1), perNode, stopAt)
		}()
	}
	waitFor(t, "sets to be acknowledged", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.acked) >= perNode
	})
	killAndWait(t, nodes[leader].pid())
	close(stop)
	wg.Wait()
	waitCluster(t, survivors, 2)

	if len(s.bad) != 0 {
		t.Errorf("acknowledged sets that triggered something else: %v", s.bad)
	}
	t.Logf("%d sets acknowledged, %d failed", len(s.acked), s.errs)
	if len(s.acked) <= perNode {
		t.Errorf("only %d sets acknowledged: the followers' sets did not go on after the kill", len(s.acked))
	}
	// 0 lost: every acknowledged set is stored.
	stored := storedAcked(t, survivors[1], s.acked)
	// 0 duplicates: each stored set (acknowledged or not) has one run
	// record, and no run ran twice.
	runs := survivors[0].waitAllRuns("count", len(stored))
	if len(runs) != len(stored) {
		t.Errorf("%d runs of count for %d stored sets", len(runs), len(stored))
	}
	ran := ranSerials(t, out)
	lost := 0
	for _, r := range runs {
		switch r.State {
		case whenlua.RunDone:
			if !ran[r.Serial] {
				t.Errorf("run %d is done but did not run", r.Serial)
			}
		case whenlua.RunLost:
			lost++
		default:
			t.Errorf("run %d: %s (%s)", r.Serial, r.State, r.Error)
		}
	}
	t.Logf("%d runs of count, %d of them lost with the leader", len(runs), lost)
	// The run in flight on the dead leader is recorded lost.
	if r := survivors[1].runRecord(slow.Serial); r.State != whenlua.RunLost || !strings.Contains(r.Error, "while it ran") {
		t.Errorf("the run in flight on the killed leader: %s (%s), want lost", r.State, r.Error)
	}
}

func TestClusterALeaderPausedPastItsLeaseHasItsLateFinishRefused(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "ran")
	_, nodes := startCluster(t, 1, 3, map[string]string{"count.lua": counterJob(out)})
	leader := waitCluster(t, nodes, 3)
	old := nodes[leader]
	var others []*node
	for i, nd := range nodes {
		if i != leader {
			others = append(others, nd)
		}
	}
	others[0].ok("set", "slow=1")
	slow := others[0].waitRunning("slow")
	pid := old.pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	// Past its lease the others elect a new leader, which records the run
	// the paused one had in flight as lost.
	newLeader := others[waitCluster(t, others, 2)]
	if r := newLeader.runRecord(slow.Serial); r.State != whenlua.RunLost {
		t.Fatalf("the paused leader's run: %s (%s), want lost", r.State, r.Error)
	}
	// Resumed, the old leader finds its claim lapsed: it stops the run, and
	// the end it reports is refused by the claim's fence and added, late,
	// to the lost run's record.
	syscall.Kill(pid, syscall.SIGCONT)
	resumed = true
	waitFor(t, "the late end in the lost run's record", func() bool {
		r := newLeader.runRecord(slow.Serial)
		return strings.Contains(r.Error, "node "+old.name+" reported its end late, refused: signal terminated")
	})
	waitCluster(t, nodes, 3)
	if r := newLeader.runRecord(slow.Serial); r.State != whenlua.RunLost {
		t.Errorf("after the old leader resumed, its run is %s (%s), want still lost", r.State, r.Error)
	}
	// It follows now: a set through it is committed by the new leader.
	old.ok("set", "x=after")
	if got := newLeader.ok("get", "x"); got != "after\n" {
		t.Errorf("get x: %q after a set through the resumed node", got)
	}
}

func TestClusterAnEverySecondJobRunsEachBoundaryOnceWhileLeadersAreKilled(t *testing.T) {
	t.Parallel()
	_, nodes := startCluster(t, 1, 3, map[string]string{"tick.lua": `every("1 second", "true", { name = "tick" })`})
	// The ticks recorded span at least d, as nd lists them; waited for a
	// few seconds at a time.
	span := func(nd *node, d time.Duration) {
		for step := 5 * time.Second; ; {
			var first, latest time.Time
			for _, r := range nd.allRuns("tick") {
				if first.IsZero() || r.Scheduled.Before(first) {
					first = r.Scheduled
				}
				if r.Scheduled.After(latest) {
					latest = r.Scheduled
				}
			}
			if !first.IsZero() && latest.Sub(first) >= d {
				return
			}
			goal := latest.Sub(first) + step
			waitFor(t, fmt.Sprintf("ticks spanning %v", goal), func() bool {
				runs := nd.allRuns("tick")
				return len(runs) > 0 && runs[0].Scheduled.Sub(first) >= goal
			})
		}
	}
	// Over a minute of ticks, the leader killed at 20 s and at 40 s.
	alive := nodes
	for kill := range 2 {
		leader := waitCluster(t, alive, len(alive))
		span(alive[0], time.Duration(kill+1)*20*time.Second)
		t.Logf("kill %d: %s", kill+1, alive[leader].name)
		killAndWait(t, alive[leader].pid())
		alive = append(append([]*node{}, alive[:leader]...), alive[leader+1:]...)
	}
	waitCluster(t, alive, 1)
	last := alive[0]
	span(last, 60*time.Second)

	runs := last.allRuns("tick")
	seen := map[time.Time]uint64{}
	first, latest := runs[0].Scheduled, runs[0].Scheduled
	for _, r := range runs {
		if r.Scheduled.IsZero() {
			t.Fatalf("run %d has no scheduled time", r.Serial)
		}
		if s, dup := seen[r.Scheduled]; dup {
			t.Errorf("%s ran twice: runs %d and %d", r.Scheduled.Format(time.TimeOnly), s, r.Serial)
		}
		seen[r.Scheduled] = r.Serial
		if r.Scheduled.Before(first) {
			first = r.Scheduled
		}
		if r.Scheduled.After(latest) {
			latest = r.Scheduled
		}
	}
	for at := first; !at.After(latest); at = at.Add(time.Second) {
		if _, ok := seen[at]; !ok {
			t.Errorf("the boundary %s did not run", at.Format(time.TimeOnly))
		}
	}
	t.Logf("%d boundaries from %s to %s", len(seen), first.Format(time.TimeOnly), latest.Format(time.TimeOnly))
}

func TestClusterARunLostWithItsLeaderIsRerunByTheNextWithRerunLost(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "attempts")
	job := fmt.Sprintf(`when(function() return changes("work") end,
	[[echo "$WHENLUA_ATTEMPT $WHENLUA_FIRST_SERIAL $JOBSERIAL" >> %s; sleep 60]], { name = "work", rerun_lost = true, on = "leader" })`, out)
	_, nodes := startCluster(t, 1, 3, map[string]string{"work.lua": job})
	leader := waitCluster(t, nodes, 3)
	follower := nodes[(leader+1)%3]
	follower.ok("set", "work=1")
	first := follower.waitRunning("work")
	killAndWait(t, nodes[leader].pid())
	rerun := follower.waitRunningOtherThan("work", first.Serial)
	if rerun.Attempt != 2 || rerun.FirstSerial != first.Serial {
		t.Errorf("the rerun: attempt %d of the run %d, want attempt 2 of %d", rerun.Attempt, rerun.FirstSerial, first.Serial)
	}
	if r := follower.runRecord(first.Serial); r.State != whenlua.RunLost {
		t.Errorf("the run in flight on the killed leader: %s (%s), want lost", r.State, r.Error)
	}
	want := fmt.Sprintf("1 %d %d\n2 %d %d\n", first.Serial, first.Serial, first.Serial, rerun.Serial)
	waitFor(t, "the rerun's line", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == want
	})
}

func TestClusterGoesOnWhenAnEtcdMemberIsKilled(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "ran")
	etcd, nodes := startCluster(t, 3, 3, map[string]string{"count.lua": counterJob(out)})
	const perNode = 30
	var s setter
	var wg sync.WaitGroup
	setAll := func(round string) {
		for i, nd := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.run(nd, fmt.Sprintf("%s-n%d", round, i+1), perNode, nil)
			}()
		}
	}
	setAll("before")
	wg.Wait()
	// The raft leader, killed as by a crash.
	var lead *etcdtest.Member
	waitFor(t, "an etcd leader", func() bool { lead = etcd.Leader(); return lead != nil })
	lead.Kill()
	t.Logf("killed etcd member %s", lead.Name())
	setAll("after")
	wg.Wait()
	waitCluster(t, nodes, 3)
	t.Logf("%d sets acknowledged, %d failed", len(s.acked), s.errs)
	if len(s.bad) != 0 {
		t.Errorf("acknowledged sets that triggered something else: %v", s.bad)
	}
	// The sets made while etcd elected its next leader may fail; the
	// cluster goes on: most sets after the kill are acknowledged, and one
	// more through each node is.
	after := 0
	for _, v := range s.acked {
		if strings.HasPrefix(v, "after-") {
			after++
		}
	}
	if after < 3*perNode/2 {
		t.Errorf("%d of %d sets after the kill acknowledged", after, 3*perNode)
	}
	for i, nd := range nodes {
		nd.ok("set", fmt.Sprintf("x=last-n%d", i+1))
		s.acked = append(s.acked, fmt.Sprintf("last-n%d", i+1))
	}
	stored := storedAcked(t, nodes[0], s.acked)
	runs := nodes[1].waitAllRuns("count", len(stored))
	if len(runs) != len(stored) {
		t.Errorf("%d runs of count for %d stored sets", len(runs), len(stored))
	}
	ran := ranSerials(t, out)
	for _, r := range runs {
		if r.State != whenlua.RunDone || !ran[r.Serial] {
			t.Errorf("run %d: %s (%s), ran: %v", r.Serial, r.State, r.Error, ran[r.Serial])
		}
	}
}

func TestClusterALeaderStoppedRecordsItsRunsAndLeavesAtOnce(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "ran")
	_, nodes := startCluster(t, 1, 3, map[string]string{"count.lua": counterJob(out)})
	leader := waitCluster(t, nodes, 3)
	other := nodes[(leader+1)%3]
	other.ok("set", "slow=1")
	slow := other.waitRunning("slow")
	// Stopped by SIGTERM (as systemd stops it), it leaves the cluster as it
	// stops: its record is gone at once, not when its lease would expire.
	pid := nodes[leader].pid()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stopped leader to exit", func() bool { return processGone(pid) })
	if cs := other.clusterStatus(); len(cs.Nodes) != 2 {
		t.Errorf("right after the leader stopped, status shows %d nodes: %+v", len(cs.Nodes), cs.Nodes)
	}
	var survivors []*node
	for i, nd := range nodes {
		if i != leader {
			survivors = append(survivors, nd)
		}
	}
	waitCluster(t, survivors, 2)
	// The stopping leader recorded its run while it still led: stopped by
	// SIGTERM, not lost.
	if r := other.runRecord(slow.Serial); r.State != whenlua.RunDone || r.Signal != "terminated" {
		t.Errorf("the stopped leader's run: %s, signal %q (%s), want done by SIGTERM", r.State, r.Signal, r.Error)
	}
	other.ok("set", "x=1")
	other.waitAllRuns("count", 1)
}
