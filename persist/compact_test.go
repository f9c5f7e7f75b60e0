package persist

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

// level0 is the number of tables in level 0.
func (s *Store) level0() int {
	for _, l := range s.db.Levels() {
		if l.Level == 0 {
			return l.NumTables
		}
	}
	return 0
}

// fillMemtables commits batches of new versions until badger has flushed
// about n memtables' worth, and returns the names written with their last
// value. It fails the test instead of hanging if a commit stalls.
func fillMemtables(t *testing.T, s *Store, n int) map[string]whenlua.Value {
	t.Helper()
	want := map[string]whenlua.Value{}
	done := make(chan error, 1)
	go func() {
		// A version is a history key and a current-value key of ~40
		// bytes each; the memtable counts about 100 bytes per entry.
		keys := int64(n) * s.db.Opts().MemTableSize / 100
		for i := int64(0); i < keys/2; i += 500 {
			b := &Batch{}
			for j := range int64(500) {
				name := fmt.Sprintf("v%06d", (i+j)%20000)
				b.Vars = append(b.Vars, VarChange{Name: name, Value: whenlua.Int(i + j), Origin: whenlua.OriginCLI})
			}
			if err := s.Commit(b); err != nil {
				done <- err
				return
			}
			for _, c := range b.Vars {
				want[c.Name] = c.Value
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("commits stalled: level 0 has %d tables, %d compactions", s.level0(), s.compactions.Load())
	}
	return want
}

func TestLongWritesAreCompactedAndNeverStallOnLevelZero(t *testing.T) {
	s := openTest(t, Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), hooks: &hooks{memTableSize: 1 << 20}})
	want := fillMemtables(t, s, 40)
	if s.compactions.Load() == 0 {
		t.Fatalf("no compaction after 40 memtables of writes (level 0: %d tables)", s.level0())
	}
	// The flushes of the last writes are compacted too, once they land.
	for deadline := time.Now().Add(10 * time.Second); s.level0() > s.db.Opts().NumLevelZeroTables; {
		if time.Now().After(deadline) {
			t.Fatalf("level 0 still has %d tables 10s after the writes", s.level0())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s = reopen(t, s)
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) != len(want) {
		t.Fatalf("%d variables after reopen, want %d", len(vars), len(want))
	}
	for name, v := range want {
		if !vars[name].Equal(v) {
			t.Fatalf("%s = %v, want %v", name, vars[name], v)
		}
	}
}

// waitPollsStop waits until the compaction goroutine has stopped looking
// at level 0.
func waitPollsStop(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := s.polls.Load()
		time.Sleep(5 * compactPoll)
		if s.polls.Load() == before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still polling level 0 with no write for 10s (%d polls, %d tables in level 0)", s.polls.Load(), s.level0())
		}
	}
}

func TestAnIdleStoreStopsLookingAtLevelZero(t *testing.T) {
	s := openTest(t, Options{hooks: &hooks{compactLinger: 20 * time.Millisecond}})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(1), Origin: whenlua.OriginCLI}}})
	// The goroutine polls for compactLinger after the write, then sleeps
	// until the next write.
	waitPollsStop(t, s)
	deadline := time.Now().Add(10 * time.Second)
	before := s.polls.Load()
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(2), Origin: whenlua.OriginCLI}}})
	for s.polls.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("a write did not wake the compaction goroutine")
		}
		time.Sleep(time.Millisecond)
	}
}

// Commits wake the compaction goroutine, but only its ticker paces its
// looks at level 0: reading badger's levels once per commit cost more
// than the commit itself.
func TestCommitsDoNotPaceTheLooksAtLevelZero(t *testing.T) {
	s := openTest(t, Options{})
	waitPollsStop(t, s)
	before, t0 := s.polls.Load(), time.Now()
	for i := range 300 {
		commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(int64(i)), Origin: whenlua.OriginCLI}}})
	}
	looks, elapsed := s.polls.Load()-before, time.Since(t0)
	// One look when the first commit wakes the goroutine, then one per
	// tick at most.
	if most := 2 + int64(elapsed/compactPoll); looks > most {
		t.Fatalf("%d looks at level 0 during 300 commits in %v, want at most %d", looks, elapsed, most)
	}
}

// In a fresh store every table is in level 0, and badger's Flatten leaves
// two of them as they are: the compaction must not retry that forever.
func TestAFreshStoreWithTwoTablesInLevelZeroGoesIdle(t *testing.T) {
	s := openTest(t, Options{hooks: &hooks{memTableSize: 1 << 20, compactLinger: 20 * time.Millisecond}})
	for i := 0; s.level0() < s.db.Opts().NumLevelZeroTables; i++ {
		b := &Batch{}
		for j := range 200 {
			b.Vars = append(b.Vars, VarChange{Name: fmt.Sprintf("v%d", j), Value: whenlua.Int(int64(i)), Origin: whenlua.OriginCLI})
		}
		commit(t, s, b)
		if i > 100000 {
			t.Fatal("level 0 never reached two tables")
		}
	}
	waitPollsStop(t, s)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Close still waits after 20s (%d tables in level 0)", s.level0())
	}
}

// A crash while writes wait at level 0's stall leaves more memtables than
// badger's Open can queue for flushing with no compactor running: Open
// must still return, with every write badger had taken.
func TestOpenAfterACrashDuringALevelZeroStall(t *testing.T) {
	dir := t.TempDir()
	bo := badgerOptions(dir, quietLogger)
	bo.MemTableSize = 1 << 20
	db, err := badger.Open(bo)
	if err != nil {
		t.Fatal(err)
	}
	// Write until badger stalls: nothing compacts this database.
	var txns atomic.Int64
	var stop atomic.Bool
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; !stop.Load(); i++ {
			err := db.Update(func(txn *badger.Txn) error {
				for j := range 500 {
					if err := txn.Set(fmt.Appendf(nil, "k%09d", i*500+j), []byte("value-value-value")); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return
			}
			txns.Add(1)
		}
	}()
	for last := int64(-1); ; {
		time.Sleep(300 * time.Millisecond)
		cur := txns.Load()
		if cur == last {
			break
		}
		last = cur
	}
	mems := 0
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".mem") {
			mems++
		}
	}
	if mems <= bo.NumMemtables+1 {
		t.Fatalf("the stall left %d memtable files, the test needs more than %d", mems, bo.NumMemtables+1)
	}
	// The crash: a copy of the files as they are, the process gone.
	acked := txns.Load()
	crashed := t.TempDir()
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Unstall and close the original.
	stop.Store(true)
	if err := db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	<-writerDone
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	opened := make(chan *Store, 1)
	go func() {
		s, err := Open(Options{Dir: crashed, Logger: quietLogger, MaintainEvery: -1})
		if err != nil {
			t.Error(err)
		}
		opened <- s
	}()
	var s *Store
	select {
	case s = <-opened:
	case <-time.After(60 * time.Second):
		t.Fatal("Open of the crashed directory still waits after 60s")
	}
	if s == nil {
		return
	}
	defer s.Close()
	// The last key of the first transaction and of the last acknowledged one.
	last := acked - 1
	err = s.db.View(func(txn *badger.Txn) error {
		for _, k := range []string{fmt.Sprintf("k%09d", 499), fmt.Sprintf("k%09d", last*500+499)} {
			if _, err := txn.Get([]byte(k)); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after the reopen: %v", err)
	}
}
