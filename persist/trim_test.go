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

func countPrefix(t testing.TB, s *Store, prefix []byte) int {
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
