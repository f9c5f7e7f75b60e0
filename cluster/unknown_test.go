package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/etcdtest"
)

// leaderStep is a leader's step in small: a set of x and y, the state of
// job j that saw it, the run it made due and the serial that run took;
// wide adds 200 sets, which take the step through the journal.
func leaderStep(v int64, wide bool) *whenlua.Batch {
	b := &whenlua.Batch{
		Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(v), Origin: "cli"}, {Name: "y", Value: whenlua.Int(v), Origin: "cli"}},
		JobStates: map[string]*whenlua.JobState{"j": {Cond: `changes("x")`, Evaluated: true, Result: true,
			Snapshot: map[string]whenlua.Value{"x": whenlua.Int(v)}}},
		Runs:   []whenlua.Run{{Serial: uint64(v), Job: "j", File: "j.lua", Trigger: "when", State: whenlua.RunRunning, Start: time.Unix(v, 0).UTC(), Code: -1}},
		Serial: uint64(v),
	}
	if wide {
		for i := range 200 {
			b.Vars = append(b.Vars, whenlua.VarChange{Name: fmt.Sprintf("w%03d", i), Value: whenlua.Int(v), Origin: "cli"})
		}
	}
	return b
}

// checkSteps checks that s holds leader steps 1..n whole, each once, and
// nothing of any other: every variable at n, n versions of x, j's
// snapshot, the serial and one run record for each serial up to it.
func checkSteps(t *testing.T, s *Store, n int64) {
	t.Helper()
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range vars {
		if v.I != n {
			t.Errorf("%s = %v, want %d: the store holds part of a step", name, v, n)
		}
	}
	if len(vars) != 2 && len(vars) != 202 {
		t.Errorf("%d variables, want those of the steps", len(vars))
	}
	hist, err := s.History("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, h := range hist {
		got = append(got, h.Value.I)
	}
	want := []int64{}
	for v := n; v >= 1; v-- {
		want = append(want, v)
	}
	if !slices.Equal(got, want) && !(len(got) == 0 && n == 0) {
		t.Errorf("history of x %v, want %v: each step once", got, want)
	}
	states, err := s.JobStates()
	if err != nil {
		t.Fatal(err)
	}
	if snap := states["j"].Snapshot["x"]; snap.I != n {
		t.Errorf("j's snapshot of x is %v, want %d (x is %v)", snap, n, vars["x"])
	}
	serial, err := s.Serial()
	if err != nil {
		t.Fatal(err)
	}
	if serial != uint64(n) {
		t.Errorf("serial %d, want %d", serial, n)
	}
	runs, err := s.Runs("", 0)
	if err != nil {
		t.Fatal(err)
	}
	var serials []uint64
	for _, r := range runs {
		serials = append(serials, r.Serial)
		if r.Serial > serial {
			t.Errorf("run %d is above the serial %d: a next leader would take its serial again", r.Serial, serial)
		}
	}
	wantSerials := []uint64{}
	for v := n; v >= 1; v-- {
		wantSerials = append(wantSerials, uint64(v))
	}
	if !slices.Equal(serials, wantSerials) && !(len(serials) == 0 && n == 0) {
		t.Errorf("run records %v, want %v", serials, wantSerials)
	}
	resp, err := s.cli.Get(context.Background(), s.k.journal, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Errorf("journal keys left: %v, %v", resp, err)
	}
}

// A commit whose reply is lost, or whose request is lost, while etcd
// cannot be reached for the void write that would settle it, returns an
// error wrapping ErrOutcomeUnknown. A store opened afterwards (the next
// leader's) holds the step whole or not at all, as etcd does, with the
// serial and the run records agreeing, and commits the next step on top.
// When etcd answers the void write, the outcome is known and said: nil
// for a step that was stored.
func TestACommitOfUnknownOutcomeLeavesTheStepWholeOrNotAtAll(t *testing.T) {
	lost := errors.New("connection lost")
	for _, tc := range []struct {
		name     string
		points   []string // the points that fail on the second step
		wide     bool
		stored   bool // etcd applied the second step
		unknown  bool // Commit cannot tell
		errorOut bool // Commit returns an error
	}{
		{"the reply is lost and etcd is unreachable", []string{"reply", "void"}, false, true, true, true},
		{"the request is lost and etcd is unreachable", []string{"send", "void"}, false, false, true, true},
		{"the marker's reply is lost and etcd is unreachable", []string{"reply", "void"}, true, true, true, true},
		{"the marker's reply is lost and etcd answers", []string{"reply"}, true, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("unknown%d", clusterSeq.Add(1))
			var failing []string
			voids := 0
			s := openTest(t, Options{Cluster: name, CallTimeout: 3 * time.Second, fault: func(p string, _ []kvOp) error {
				if p == "void" {
					voids++
				}
				if slices.Contains(failing, p) {
					return lost
				}
				return nil
			}})
			commit(t, s, leaderStep(1, tc.wide))
			failing = tc.points
			err := s.Commit(leaderStep(2, tc.wide))
			failing = nil
			if errors.Is(err, ErrOutcomeUnknown) != tc.unknown || (err != nil) != tc.errorOut {
				t.Fatalf("commit: %v; want an error %v, wrapping ErrOutcomeUnknown %v", err, tc.errorOut, tc.unknown)
			}
			if voids == 0 {
				t.Fatal("no void write was tried")
			}
			t.Logf("commit: %v (%d void writes tried)", err, voids)
			stored := int64(1)
			if tc.stored {
				stored = 2
			}
			// The next leader reads what etcd holds.
			next := openTest(t, Options{Cluster: name})
			checkSteps(t, next, stored)
			commit(t, next, leaderStep(stored+1, tc.wide))
			checkSteps(t, next, stored+1)
			// The store whose commit had an unknown outcome reads the store
			// again before it commits.
			commit(t, s, leaderStep(stored+2, tc.wide))
			checkSteps(t, reopen(t, next), stored+2)
		})
	}
}

// The same with etcd really gone: the one etcd member dies after it
// applied a commit, before the reply is read. The void write fails for
// as long as CallTimeout, so the commit's outcome is unknown; once etcd is
// back, a store opened on it holds the step whole, and the writer goes on.
func TestACommitWhoseEtcdDiesBeforeTheReplyIsOfUnknownOutcome(t *testing.T) {
	c := etcdtest.Start(t, 1)
	member := c.Member(0)
	var onReply func()
	s := openTest(t, Options{Client: newClient(t, c.Endpoints()), CallTimeout: 3 * time.Second, fault: func(p string, _ []kvOp) error {
		if p == "reply" && onReply != nil {
			onReply()
			onReply = nil
			return errors.New("connection lost")
		}
		return nil
	}})
	commit(t, s, leaderStep(1, false))
	onReply = member.Kill
	err := s.Commit(leaderStep(2, false))
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("commit: %v, want an error wrapping ErrOutcomeUnknown", err)
	}
	t.Logf("commit: %v", err)
	if err := member.Restart(); err != nil {
		t.Fatal(err)
	}
	next := openTest(t, Options{Client: newClient(t, c.Endpoints()), Cluster: s.opts.Cluster})
	checkSteps(t, next, 2)
	commit(t, s, leaderStep(3, false))
	checkSteps(t, next, 3)
}

// A deposed leader whose reply was lost, and whose step another leader
// then committed on top of, cannot tell whether its step was stored (the
// head moved past it): the error wraps ErrOutcomeUnknown, and never says
// that nothing was stored, since here all of it was.
func TestALostReplyOvertakenByTheNextLeaderIsUnknown(t *testing.T) {
	lost := errors.New("connection lost")
	cli := newClient(t, sharedEtcd.Endpoints())
	name := fmt.Sprintf("overtaken%d", clusterSeq.Add(1))
	fence, sess := leader(t, cli, name)
	var onReply func()
	old := openTest(t, Options{Client: cli, Cluster: name, Fence: fence, fault: func(p string, _ []kvOp) error {
		if p == "reply" && onReply != nil {
			onReply()
			return lost
		}
		return nil
	}})
	commit(t, old, leaderStep(1, false))
	onReply = func() {
		onReply = nil
		// Etcd applied step 2; before the reply arrives the leader's lease
		// expires, and the next leader commits step 3 on top.
		if err := sess.Close(); err != nil {
			t.Fatal(err)
		}
		fence2, _ := leader(t, newClient(t, sharedEtcd.Endpoints()), name)
		next := openTest(t, Options{Client: newClient(t, sharedEtcd.Endpoints()), Cluster: name, Fence: fence2})
		commit(t, next, leaderStep(3, false))
	}
	err := old.Commit(leaderStep(2, false))
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("commit: %v, want an error wrapping ErrOutcomeUnknown", err)
	}
	checkSteps(t, openTest(t, Options{Cluster: name}), 3)
	if err := old.Commit(leaderStep(4, false)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the deposed leader's next commit: %v, want ErrNotLeader", err)
	}
}

// A leader's term store, at a commit of unknown outcome, ends the term
// (once), and refuses every later commit of the term with ErrNotLeader,
// storing nothing: the engine, until it is closed, works from memory that
// may be behind the store, and here would take serial 2 again.
func TestATermCommitsNothingAfterACommitOfUnknownOutcome(t *testing.T) {
	lost := errors.New("connection lost")
	cli := newClient(t, sharedEtcd.Endpoints())
	name := fmt.Sprintf("term%d", clusterSeq.Add(1))
	fence, _ := leader(t, cli, name)
	armed := false
	n := &Node{log: quietLogger, cli: cli, opts: NodeOptions{Cluster: name, Store: Options{MaintainEvery: -1, CallTimeout: 3 * time.Second,
		fault: func(p string, _ []kvOp) error {
			if armed && (p == "reply" || p == "void") {
				return lost
			}
			return nil
		}}}}
	ends := 0
	st, err := n.openStore(fence()[0], func() { ends++ })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Commit(leaderStep(1, false)); err != nil {
		t.Fatal(err)
	}
	armed = true
	if err := st.Commit(leaderStep(2, false)); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("commit: %v, want ErrOutcomeUnknown", err)
	}
	armed = false
	if ends != 1 {
		t.Fatalf("the term was ended %d times, want once", ends)
	}
	// The engine undid step 2 in memory and makes serial 2 again, for
	// another set.
	again := leaderStep(2, false)
	again.Vars = again.Vars[:1]
	again.Vars[0].Value = whenlua.Int(20)
	if err := st.Commit(again); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a commit after the outcome was unknown: %v, want ErrNotLeader", err)
	}
	if ends != 1 {
		t.Errorf("the term was ended %d times, want once", ends)
	}
	checkSteps(t, openTest(t, Options{Cluster: name}), 2)
}
