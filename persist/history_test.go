package persist

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

// A clock stepped back an hour between two sets (the engine gives each
// version its clock's time): the history still lists the versions in the
// order they were set, and retention deletes the one set first, not the
// one with the earliest time.
func TestAClockSteppedBackNeitherReordersHistoryNorTrimsTheNewerVersion(t *testing.T) {
	s := openTest(t, Options{HistoryKeep: 2})
	set := func(v int64, at time.Time) {
		commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(v), Origin: "cli", Time: at}}})
	}
	now := time.Now()
	set(1, now)
	set(2, now.Add(-time.Hour)) // the clock stepped back
	set(3, now.Add(-time.Hour+time.Second))
	check := func(when string) {
		t.Helper()
		h, err := s.History("x", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 || h[0].Value.I != 3 || h[1].Value.I != 2 {
			t.Fatalf("%s: history %+v, want versions 3 and 2, newest first", when, h)
		}
		if !h[1].Time.Equal(now.Add(-time.Hour)) || !h[0].Time.Equal(now.Add(-time.Hour+time.Second)) {
			t.Errorf("%s: times %v, %v: want them as the clock gave them", when, h[0].Time, h[1].Time)
		}
	}
	check("after the sets")
	if err := s.Trim(); err != nil {
		t.Fatal(err)
	}
	check("after Trim")
	s = reopen(t, s)
	check("after a restart")
}

// A version committed without a time gets the store's clock's.
func TestAVersionWithoutTimeGetsTheInjectedClocksTime(t *testing.T) {
	s := openTest(t, Options{Now: func() time.Time { return at(time.Minute) }})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(1)}}})
	if h, _ := s.History("x", 0); len(h) != 1 || !h[0].Time.Equal(at(time.Minute)) {
		t.Errorf("history %+v", h)
	}
}

// The bound holds after every commit, not only after a maintenance pass.
func TestRetentionHoldsAtEveryCommit(t *testing.T) {
	s := openTest(t, Options{HistoryKeep: 5, RunsKeep: 10})
	for i := range 200 {
		b := &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(int64(i))}}}
		r := run(uint64(i+1), "j", whenlua.RunDone)
		switch i {
		case 3:
			r.State = whenlua.RunRunning
		case 5:
			r.State = whenlua.RunQueued
		}
		b.Runs = []whenlua.Run{r}
		commit(t, s, b)
		if n := countPrefix(t, s, historyPrefix("x")); n > 5 {
			t.Fatalf("after commit %d: %d versions stored, keep is 5", i, n)
		}
		if n := countPrefix(t, s, prefixRun); n > 10 {
			t.Fatalf("after commit %d: %d runs stored, keep is 10", i, n)
		}
	}
	h, _ := s.History("x", 0)
	if len(h) != 5 || h[0].Value.I != 199 || h[4].Value.I != 195 {
		t.Errorf("history %+v", h)
	}
	runs, _ := s.Runs("", 0)
	if len(runs) != 10 || runs[0].Serial != 200 || runs[8].Serial != 6 || runs[9].Serial != 4 {
		t.Errorf("runs %v", runs)
	}
	// The count survives a restart.
	s = reopen(t, s)
	commit(t, s, &Batch{Runs: []whenlua.Run{run(201, "j", whenlua.RunDone)}})
	if n := countPrefix(t, s, prefixRun); n != 10 {
		t.Errorf("%d runs after a restart and one more", n)
	}
}

// A store written with the time in the history keys (format 1) is
// rewritten at Open, its versions keeping their order, times and origins.
func TestHistoryInTheEarlierLayoutIsMigrated(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		for i := range 3 {
			k := append([]byte("h/x\x00"), binary.BigEndian.AppendUint64(nil, uint64(at(time.Duration(i)*time.Second).UnixNano()))...)
			k = binary.BigEndian.AppendUint64(k, uint64(100+i))
			v := appendString([]byte{1}, fmt.Sprint("origin ", i))
			v = whenlua.Int(int64(i)).AppendBinary(v)
			if err := txn.Set(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTest(t, Options{Dir: dir})
	h, err := s.History("x", 0)
	if err != nil || len(h) != 3 {
		t.Fatalf("history %+v, %v", h, err)
	}
	for i, v := range h {
		want := 2 - i
		if v.Value.I != int64(want) || v.Origin != fmt.Sprint("origin ", want) || !v.Time.Equal(at(time.Duration(want)*time.Second)) {
			t.Errorf("version %d: %+v", i, v)
		}
	}
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(3)}}})
	if h, _ := s.History("x", 0); len(h) != 4 || h[0].Value.I != 3 {
		t.Errorf("after one more version: %+v", h)
	}
}
