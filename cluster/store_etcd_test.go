package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/etcdtest"
)

// leader campaigns in the election of cluster on cli and returns the fence
// a leader passes to its store, and its session.
func leader(t *testing.T, cli *clientv3.Client, cluster string) (func() []clientv3.Cmp, *concurrency.Session) {
	t.Helper()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	e := concurrency.NewElection(sess, "/whenlua/"+cluster+"/election")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Campaign(ctx, "node"); err != nil {
		t.Fatal(err)
	}
	key, rev := e.Key(), e.Rev()
	return func() []clientv3.Cmp {
		return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", rev)}
	}, sess
}

func setX(v int64) *whenlua.Batch {
	return &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(v), Origin: "cli"}}, Serial: uint64(v)}
}

// bigSets is a group commit of n sets of distinct variables and n job
// states: beyond one etcd transaction from n = 64 on.
func bigSets(n int, v int64) *whenlua.Batch {
	b := &whenlua.Batch{JobStates: map[string]*whenlua.JobState{}, Serial: uint64(v)}
	for i := range n {
		b.Vars = append(b.Vars, whenlua.VarChange{Name: fmt.Sprintf("v%03d", i), Value: whenlua.Int(v), Origin: "cli"})
		b.JobStates[fmt.Sprintf("job%03d", i)] = &whenlua.JobState{Cond: "changes(\"v\")", Evaluated: true, Result: true}
	}
	return b
}

// A deposed leader commits nothing: once its lease is revoked, and once
// another node has won the election, its commits (small or through the
// journal) fail with ErrNotLeader and store nothing, while the new
// leader's commit on its own store succeeds.
func TestACommitIsRefusedOnceTheFenceFails(t *testing.T) {
	cli := newClient(t, sharedEtcd.Endpoints())
	name := fmt.Sprintf("fence%d", clusterSeq.Add(1))
	fence, sess := leader(t, cli, name)
	old := openTest(t, Options{Client: cli, Cluster: name, Fence: fence})
	commit(t, old, setX(1))
	commit(t, old, bigSets(256, 1))

	// Its session ends (a lease that expired), and another node wins.
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	fence2, _ := leader(t, newClient(t, sharedEtcd.Endpoints()), name)
	next := openTest(t, Options{Client: newClient(t, sharedEtcd.Endpoints()), Cluster: name, Fence: fence2})

	for _, b := range []*whenlua.Batch{setX(2), bigSets(256, 2)} {
		if err := old.Commit(b); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("deposed leader's commit of %d sets: %v, want ErrNotLeader", len(b.Vars), err)
		}
	}
	if err := old.Trim(); !errors.Is(err, ErrNotLeader) {
		t.Errorf("deposed leader's trim: %v", err)
	}
	check := func(s *Store, wantX, wantV int64) {
		t.Helper()
		vars, err := s.Vars()
		if err != nil {
			t.Fatal(err)
		}
		if vars["x"].I != wantX || vars["v255"].I != wantV || vars["v000"].I != wantV {
			t.Fatalf("x=%v v000=%v v255=%v, want %d and %d", vars["x"], vars["v000"], vars["v255"], wantX, wantV)
		}
		if h, _ := s.History("x", 0); int64(len(h)) != wantX {
			t.Errorf("history of x: %d versions, want %d", len(h), wantX)
		}
	}
	check(next, 1, 1)
	// Nothing of the refused journal step is left for anyone to apply.
	if resp, err := cli.Get(context.Background(), next.k.journal, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
		t.Errorf("journal keys left: %v, %v", resp, err)
	}
	commit(t, next, setX(2))
	commit(t, next, bigSets(256, 2))
	check(next, 2, 2)
	check(old, 2, 2) // the deposed node still reads what is stored
}

// A writer whose view is stale (another writer committed since) reloads
// it and commits on top: the history's sequences stay whole.
func TestAStaleWriterReloadsAndCommitsOnTop(t *testing.T) {
	name := fmt.Sprintf("stale%d", clusterSeq.Add(1))
	a := openTest(t, Options{Cluster: name})
	b := openTest(t, Options{Cluster: name})
	commit(t, a, setX(1))
	commit(t, b, setX(2))
	commit(t, a, setX(3))
	h, err := b.History("x", 0)
	if err != nil || len(h) != 3 || h[0].Value.I != 3 || h[2].Value.I != 1 {
		t.Fatalf("history %+v, %v", h, err)
	}
}

// A write whose reply is lost is found stored; a write whose request is
// lost is found not stored, and can never apply later.
func TestAWriteOfUnknownOutcomeIsResolved(t *testing.T) {
	lost := errors.New("connection lost")
	var point string
	s := openTest(t, Options{fault: func(p string, _ []kvOp) error {
		if p == point {
			return lost
		}
		return nil
	}})
	point = "reply"
	if err := s.Commit(setX(1)); err != nil {
		t.Fatalf("commit whose reply was lost: %v", err)
	}
	point = "send"
	if err := s.Commit(setX(2)); !errors.Is(err, lost) {
		t.Fatalf("commit whose request was lost: %v", err)
	}
	point = ""
	commit(t, s, setX(3))
	h, err := s.History("x", 0)
	if err != nil || len(h) != 2 || h[0].Value.I != 3 || h[1].Value.I != 1 {
		t.Fatalf("history %+v, %v", h, err)
	}
}

// A writer that stops between a journal step's parts and its marker
// stored nothing, and its parts are cleaned up; one that stops after the
// marker stored the whole step: every reader sees it whole at once, and
// the next writer applies it.
func TestAWriterStoppedInTheJournalLosesOrDoublesNothing(t *testing.T) {
	crash := errors.New("writer stopped")
	for _, point := range []string{"marker", "apply"} {
		t.Run("stopped before "+point, func(t *testing.T) {
			name := fmt.Sprintf("crash%d", clusterSeq.Add(1))
			armed := false
			w := openTest(t, Options{Cluster: name, fault: func(p string, _ []kvOp) error {
				if armed && p == point {
					return crash
				}
				return nil
			}})
			commit(t, w, bigSets(256, 1))
			armed = true
			if err := w.Commit(bigSets(256, 2)); !errors.Is(err, crash) {
				t.Fatalf("commit: %v", err)
			}
			w.Close()
			want := int64(1)
			if point == "apply" {
				want = 2 // the marker is stored: the step is committed
			}
			reader := openTest(t, Options{Cluster: name, MaintainEvery: -1})
			// Open applied the step; before that, reads overlaid it (below).
			vars, err := reader.Vars()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 256 {
				if v := vars[fmt.Sprintf("v%03d", i)]; v.I != want {
					t.Fatalf("v%03d = %v, want %d", i, v, want)
				}
			}
			if h, _ := reader.History("v100", 0); int64(len(h)) != want {
				t.Errorf("history of v100: %d versions, want %d", len(h), want)
			}
			if n, _ := reader.Serial(); n != uint64(want) {
				t.Errorf("serial %d, want %d", n, want)
			}
			commit(t, reader, bigSets(256, 3))
			if h, _ := reader.History("v100", 0); int64(len(h)) != want+1 || h[0].Value.I != 3 {
				t.Errorf("history of v100 after one more: %+v", h)
			}
			cli := reader.cli
			if resp, err := cli.Get(context.Background(), reader.k.journal, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
				t.Errorf("journal keys left: %v, %v", resp, err)
			}
		})
	}
}

// Reads see a committed journal step whole before it is applied.
func TestReadsSeeACommittedStepBeforeItIsApplied(t *testing.T) {
	crash := errors.New("writer stopped")
	name := fmt.Sprintf("overlay%d", clusterSeq.Add(1))
	w := openTest(t, Options{Cluster: name, HistoryKeep: 2, fault: func(p string, _ []kvOp) error {
		if p == "apply" {
			return crash
		}
		return nil
	}})
	for v := int64(1); v <= 2; v++ {
		if err := w.Commit(bigSets(256, v)); !errors.Is(err, crash) {
			t.Fatalf("commit: %v", err)
		}
		// The store goes on with the step left unapplied: reads overlay it.
		vars, err := w.Vars()
		if err != nil || len(vars) != 256 || vars["v000"].I != v || vars["v255"].I != v {
			t.Fatalf("vars after step %d: %d, %v", v, len(vars), err)
		}
		st, err := w.JobStates()
		if err != nil || len(st) != 256 {
			t.Fatalf("job states: %d, %v", len(st), err)
		}
		if h, _ := w.History("v007", 0); int64(len(h)) != v || h[0].Value.I != v {
			t.Fatalf("history of v007 after step %d: %+v", v, h)
		}
	}
}

// With HistoryKeep versions per variable, the maintenance pass (trim,
// compaction, defragmentation) keeps etcd's database near the size of
// what is kept, however many versions were written: etcd keeps every
// revision until compacted.
func TestCompactionKeepsTheDatabaseBounded(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := newClient(t, c.Endpoints())
	s := openTest(t, Options{Client: cli, HistoryKeep: 10, DefragMinFree: 1, DefragEvery: time.Nanosecond})
	m := &maintainer{s: s}
	ctx := context.Background()
	val := whenlua.String(strings.Repeat("v", 8<<10))
	const sets, every = 2000, 200
	var sizes []int64
	for i := range sets {
		commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: fmt.Sprintf("x%d", i%4), Value: val}}})
		if (i+1)%every == 0 {
			if err := m.pass(ctx); err != nil {
				t.Fatal(err)
			}
			st, err := cli.Status(ctx, c.Endpoints()[0])
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, st.DbSize)
		}
	}
	// Written: 2000 x 8 KiB = 16 MiB of versions. Kept: 40 versions, and
	// the revisions of the periods since the compacted one.
	t.Logf("database after each pass, KiB: %v", kib(sizes))
	written := int64(sets * len(val.S))
	if last := sizes[len(sizes)-1]; last > written/2 || last > sizes[1]*5/4 {
		t.Errorf("database grows: %v KiB after the passes, %d KiB written", kib(sizes), written>>10)
	}
	for i := range 4 {
		if h, _ := s.History(fmt.Sprintf("x%d", i), 0); len(h) != 10 {
			t.Errorf("x%d: %d versions", i, len(h))
		}
	}
}

// A 3-member etcd with one member killed goes on: commits made while the
// member is down are all stored, each once, and the member catches up.
func TestCommitsGoOnWithAnEtcdMemberKilled(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cli := newClient(t, c.Endpoints())
	s := openTest(t, Options{Client: cli})
	commit(t, s, setX(1))
	dead := c.Leader()
	if dead == nil {
		t.Fatal("no etcd leader")
	}
	dead.Kill()
	// A commit in flight when the etcd leader died may fail; it stored
	// nothing then, and is made again, as the engine does.
	deadline := time.Now().Add(time.Minute)
	var acked []int64
	for v := int64(2); v <= 20; v++ {
		for {
			err := s.Commit(setX(v))
			if err == nil {
				acked = append(acked, v)
				break
			}
			if errors.Is(err, ErrOutcomeUnknown) || time.Now().After(deadline) {
				t.Fatalf("commit %d with a member killed: %v", v, err)
			}
		}
	}
	if err := dead.Restart(); err != nil {
		t.Fatal(err)
	}
	// Read through the restarted member alone.
	one := openTest(t, Options{Client: newClient(t, []string{dead.Endpoint()}), Cluster: s.opts.Cluster})
	h, err := one.History("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 20 {
		t.Fatalf("%d versions, want 20 (each acknowledged set once)", len(h))
	}
	for i, v := range h {
		if v.Value.I != int64(20-i) {
			t.Fatalf("version %d is %v, want %d", i, v.Value, 20-i)
		}
	}
}

func kib(sizes []int64) []int64 {
	out := make([]int64, len(sizes))
	for i, n := range sizes {
		out[i] = n >> 10
	}
	return out
}

// The maintenance goroutine applies retention at once when the store
// opens (a bound lowered at a restart holds from the start), only on the
// writer, and Close stops it (goleak in TestMain checks).
func TestTheMaintenanceGoroutineTrimsOnTheWriterAndStopsOnClose(t *testing.T) {
	cli := newClient(t, sharedEtcd.Endpoints())
	name := fmt.Sprintf("maint%d", clusterSeq.Add(1))
	s := openTest(t, Options{Client: cli, Cluster: name})
	for i := range 10 {
		commit(t, s, setX(int64(i+1)))
	}
	s.Close()

	passes := make(chan error, 10)
	notLeader := func() []clientv3.Cmp {
		return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("/whenlua/"+name+"/election/none"), "!=", 0)}
	}
	follower := openTest(t, Options{Client: cli, Cluster: name, HistoryKeep: 2, MaintainEvery: time.Hour, Fence: notLeader,
		afterPass: func(err error) { passes <- err }})
	if err := <-passes; !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower's pass: %v", err)
	}
	if n := len(must(follower.History("x", 0))); n != 10 {
		t.Fatalf("a follower trimmed: %d versions left", n)
	}
	follower.Close()

	writer := openTest(t, Options{Client: cli, Cluster: name, HistoryKeep: 2, MaintainEvery: time.Hour,
		afterPass: func(err error) { passes <- err }})
	if err := <-passes; err != nil {
		t.Fatalf("the writer's pass: %v", err)
	}
	h := must(writer.History("x", 0))
	if len(h) != 2 || h[0].Value.I != 10 || h[1].Value.I != 9 {
		t.Fatalf("history after the first pass: %+v", h)
	}
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// One key beyond what one etcd request takes (a job state whose snapshot
// holds 13 values of 64 KiB) is refused with ErrStoreTooBig before
// anything is written.
func TestAKeyTooBigForEtcdIsRefusedAndNothingStored(t *testing.T) {
	s := openTest(t, Options{})
	snap := map[string]whenlua.Value{}
	for i := range 13 {
		snap[fmt.Sprintf("v%d", i)] = whenlua.String(strings.Repeat("s", whenlua.MaxValueLen))
	}
	b := setX(1)
	b.JobStates = map[string]*whenlua.JobState{"j": {Cond: "true", Evaluated: true, Snapshot: snap}}
	if err := s.Commit(b); !errors.Is(err, whenlua.ErrStoreTooBig) {
		t.Fatalf("got %v, want ErrStoreTooBig", err)
	}
	if vars, err := s.Vars(); err != nil || len(vars) != 0 {
		t.Errorf("vars %v, %v", vars, err)
	}
	if st, err := s.JobStates(); err != nil || len(st) != 0 {
		t.Errorf("job states %v, %v", st, err)
	}
	commit(t, s, setX(2)) // the store goes on
}

// etcd at its quota refuses writes: Commit says ErrDiskFull and stores
// nothing, and the maintenance pass compacts, defragments and disarms the
// alarm, after which commits go on.
func TestAnEtcdAtItsQuotaRefusesCommitsUntilMaintenanceRecovers(t *testing.T) {
	c := etcdtest.StartOptions(t, etcdtest.Options{Configure: func(cfg *embed.Config) {
		cfg.QuotaBackendBytes = 4 << 20
	}})
	cli := newClient(t, c.Endpoints())
	s := openTest(t, Options{Client: cli, HistoryKeep: 3})
	val := whenlua.String(strings.Repeat("q", whenlua.MaxValueLen))
	var acked int64
	for i := int64(1); ; i++ {
		err := s.Commit(&whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: val}, {Name: "n", Value: whenlua.Int(i)}}})
		if errors.Is(err, whenlua.ErrDiskFull) {
			break
		}
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		acked = i
		if i > 1000 {
			t.Fatal("no quota reached")
		}
	}
	t.Logf("quota reached after %d commits", acked)
	if vars, err := s.Vars(); err != nil || vars["n"].I != acked {
		t.Fatalf("n = %v, %v; want %d", vars["n"], err, acked)
	}
	if err := s.Commit(setX(1)); !errors.Is(err, whenlua.ErrDiskFull) {
		t.Fatalf("commit at the quota: %v", err)
	}
	m := &maintainer{s: s}
	if err := m.pass(context.Background()); err != nil {
		t.Fatalf("maintenance: %v", err)
	}
	commit(t, s, setX(1))
	if vars, _ := s.Vars(); vars["n"].I != acked || vars["x"].I != 1 {
		t.Errorf("vars after recovery: %v", vars)
	}
}

// A reader never sees part of a step: while a writer commits group
// commits of 256 sets through the journal, applied over several
// transactions, every read of the variables finds them all from one step.
func TestReadsNeverSeePartOfAStep(t *testing.T) {
	name := fmt.Sprintf("atomic%d", clusterSeq.Add(1))
	w := openTest(t, Options{Cluster: name})
	r := openTest(t, Options{Cluster: name})
	commit(t, w, bigSets(256, 0))
	done := make(chan error, 1)
	go func() {
		for v := int64(1); v <= 10; v++ {
			if err := w.Commit(bigSets(256, v)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	reads := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d reads during the commits", reads)
			if reads == 0 {
				t.Fatal("no read while the writer committed")
			}
			return
		default:
		}
		vars, err := r.Vars()
		if err != nil {
			t.Fatal(err)
		}
		reads++
		first := vars["v000"]
		for i := range 256 {
			if v := vars[fmt.Sprintf("v%03d", i)]; !v.Equal(first) {
				t.Fatalf("read %d: v000 = %v but v%03d = %v", reads, first, i, v)
			}
		}
	}
}
