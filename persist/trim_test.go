package persist

import (
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// versions commits n versions of name, one per second from start.
func versions(t *testing.T, s *Store, name string, start time.Time, n int) {
	t.Helper()
	b := &Batch{}
	for i := range n {
		b.Vars = append(b.Vars, VarChange{Name: name, Value: whenlua.Int(int64(i)), Time: start.Add(time.Duration(i) * time.Second)})
	}
	commit(t, s, b)
}

func historyLen(t *testing.T, s *Store, name string) int {
	t.Helper()
	h, err := s.History(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(h)
}

func TestTrimKeepsTheNewestVersionsByCount(t *testing.T) {
	s := openTest(t, Options{HistoryKeep: 5})
	versions(t, s, "a", at(0), 20)
	versions(t, s, "ab", at(0), 3)
	versions(t, s, "b", at(0), 5)
	if err := s.Trim(); err != nil {
		t.Fatal(err)
	}
	h, _ := s.History("a", 0)
	if len(h) != 5 || h[0].Value.I != 19 || h[4].Value.I != 15 {
		t.Errorf("a: %#v", h)
	}
	if n := historyLen(t, s, "ab"); n != 3 {
		t.Errorf("ab: %d versions", n)
	}
	if n := historyLen(t, s, "b"); n != 5 {
		t.Errorf("b: %d versions", n)
	}
	vars, _ := s.Vars()
	if vars["a"].I != 19 || vars["ab"].I != 2 || vars["b"].I != 4 {
		t.Errorf("current values changed: %v", vars)
	}
}

func TestTrimByAgeNeverRemovesTheNewestVersion(t *testing.T) {
	s := openTest(t, Options{HistoryMaxAge: time.Hour})
	now := time.Now()
	versions(t, s, "old", now.Add(-48*time.Hour), 10)              // all old
	versions(t, s, "mixed", now.Add(-time.Hour-5*time.Second), 10) // 5 older than an hour
	commit(t, s, &Batch{Vars: []VarChange{{Name: "unset", Value: whenlua.Int(1), Time: now.Add(-3 * time.Hour)}, {Name: "unset", Value: whenlua.Nil, Time: now.Add(-2 * time.Hour)}}})
	if err := s.Trim(); err != nil {
		t.Fatal(err)
	}
	h, _ := s.History("old", 0)
	if len(h) != 1 || h[0].Value.I != 9 {
		t.Errorf("old: %#v", h)
	}
	if n := historyLen(t, s, "mixed"); n < 4 || n > 5 {
		t.Errorf("mixed: %d versions, want the 5 younger than an hour", n)
	}
	h, _ = s.History("unset", 0)
	if len(h) != 1 || !h[0].Value.IsNil() {
		t.Errorf("unset: %#v", h)
	}
	vars, _ := s.Vars()
	if vars["old"].I != 9 || vars["mixed"].I != 9 {
		t.Errorf("current values changed: %v", vars)
	}
	if _, ok := vars["unset"]; ok {
		t.Errorf("unset came back")
	}
}

func TestTrimOfRunsKeepsTheNewestAndEveryRunningOne(t *testing.T) {
	s := openTest(t, Options{RunsKeep: 10})
	b := &Batch{}
	for i := uint64(1); i <= 30; i++ {
		r := run(i, "j", whenlua.RunDone)
		if i == 2 || i == 7 {
			r.State = whenlua.RunRunning
		}
		r.Output = []byte("out")
		b.Runs = append(b.Runs, r)
	}
	commit(t, s, b)
	if err := s.Trim(); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs("", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, r := range runs {
		got = append(got, r.Serial)
	}
	// Ten records in all: the running ones count, but are never the ones to go.
	want := []uint64{30, 29, 28, 27, 26, 25, 24, 23, 7, 2}
	if len(got) != len(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("kept %v, want %v", got, want)
		}
	}
	if r, err := s.Run(23); err != nil || string(r.Output) != "out" {
		t.Errorf("run 23: %v, %v", r, err)
	}
	// The output of a trimmed run went with it.
	if n := countPrefix(t, s, prefixOutput); n != 10 {
		t.Errorf("%d outputs left", n)
	}
}

func TestTheMaintenanceGoroutineTrimsAndStopsOnClose(t *testing.T) {
	s := openTest(t, Options{HistoryKeep: 2, MaintainEvery: 10 * time.Millisecond})
	versions(t, s, "x", at(0), 10)
	deadline := time.Now().Add(5 * time.Second)
	for historyLen(t, s, "x") != 2 {
		if time.Now().After(deadline) {
			t.Fatal("history not trimmed in the background")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// goleak in TestMain checks that Close stopped the goroutine.
}

func countPrefix(t *testing.T, s *Store, prefix []byte) int {
	t.Helper()
	n := 0
	err := s.db.View(func(txn *badgerTxn) error {
		it := txn.NewIterator(badgerIteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
