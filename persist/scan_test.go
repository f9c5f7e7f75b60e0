package persist

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/simtest"
)

// scan reads every version the store keeps.
var scan = simtest.History

func TestScanHistoryGivesEveryVersionWithItsCommitAndSetMark(t *testing.T) {
	s := openTest(t, Options{})
	first := whenlua.SetMark{Set: 1, Queued: true}
	second := whenlua.SetMark{Set: 2, Rounds: 0, Queued: true}
	commit(t, s, &Batch{Vars: []VarChange{
		{Name: "a", Value: whenlua.Int(1), Origin: "job j post", Time: at(0), Mark: first},
		{Name: "b", Value: whenlua.Int(2), Origin: "job j post", Time: at(0), Mark: second},
	}})
	unset := whenlua.SetMark{Set: 1, Whisper: true}
	commit(t, s, &Batch{Vars: []VarChange{{Name: "a", Value: whenlua.Nil, Origin: "whisper", Time: at(1), Mark: unset}}})
	s = reopen(t, s) // the marks and commits are read from disk
	got := scan(t, s)
	if len(got) != 3 {
		t.Fatalf("scanned %+v", got)
	}
	a1, a2, b := got[0], got[1], got[2]
	if a1.Name != "a" || a1.Value.I != 1 || a1.Mark != first || a2.Name != "a" || !a2.Value.IsNil() || a2.Mark != unset || b.Name != "b" || b.Mark != second {
		t.Fatalf("scanned %+v", got)
	}
	if a1.Commit == 0 || a1.Commit != b.Commit || a2.Commit <= a1.Commit {
		t.Errorf("commits %d, %d, %d: want the first two equal and the third later", a1.Commit, b.Commit, a2.Commit)
	}
	h, err := s.History("a", 0)
	if err != nil || len(h) != 2 || h[0].Commit != a2.Commit || h[1].Mark != first {
		t.Errorf("history %+v, %v", h, err)
	}
}

// A version written before set marks were kept (format 2) still reads,
// with a zero mark.
func TestAVersionWithoutASetMarkStillReads(t *testing.T) {
	s := openTest(t, Options{})
	old := []byte{formatVersionNoMark}
	old = binary.BigEndian.AppendUint64(old, uint64(at(0).UnixNano()))
	old = appendString(old, "cli")
	old = whenlua.Int(5).AppendBinary(old)
	txn := s.db.NewTransaction(true)
	if err := txn.Set(historyKey("x", 1), old); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		t.Fatal(err)
	}
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(6), Origin: "cli", Time: at(1), Mark: whenlua.SetMark{Set: 1}}}})
	got := scan(t, s)
	if len(got) != 2 || got[0].Value.I != 5 || got[0].Mark != (whenlua.SetMark{}) || !got[0].Time.Equal(at(0)) || got[1].Value.I != 6 || got[1].Mark.Set != 1 {
		t.Fatalf("scanned %+v", got)
	}
}

func TestAReadOnlyStoreReadsAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(1), Origin: "cli", Time: at(0)}}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := dirState(t, dir)
	ro := openTest(t, Options{Dir: dir, ReadOnly: true})
	if got := scan(t, ro); len(got) != 1 || got[0].Value.I != 1 {
		t.Fatalf("scanned %+v", got)
	}
	if err := ro.Commit(&Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(2), Origin: "cli"}}}); err == nil {
		t.Fatal("a read-only store took a commit")
	}
	if err := ro.Trim(); err == nil {
		t.Fatal("a read-only store trimmed")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if after := dirState(t, dir); after != before {
		t.Errorf("the directory changed:\nbefore %s\nafter  %s", before, after)
	}
}

// dirState lists the files of dir with their sizes and modification times.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out += e.Name() + " " + fi.ModTime().String() + " " + string(rune('0'+fi.Size()%10)) + "; "
	}
	return out
}

func TestAReadOnlyOpenSaysWhyItCannot(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(1), Origin: "cli", Time: at(0)}}})
	if _, err := Open(Options{Dir: dir, ReadOnly: true, Logger: quietLogger}); !errors.Is(err, ErrLocked) {
		t.Errorf("read-only open of a store in use: %v, want ErrLocked", err)
	}
	// A copy of the open store has a memtable log badger must recover.
	cp := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cp, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(Options{Dir: cp, ReadOnly: true, Logger: quietLogger}); !errors.Is(err, ErrNeedsRecovery) {
		t.Errorf("read-only open of a copy of a store in use: %v, want ErrNeedsRecovery", err)
	}
}
