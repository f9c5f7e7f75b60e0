package persist

import (
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

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
	case <-time.After(30 * time.Second):
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
