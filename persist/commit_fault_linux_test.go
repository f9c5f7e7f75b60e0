package persist

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/whenlua/whenlua"
)

// breakMemtableSync makes the msync of the memtable's log in dir fail, as
// a disk error would: it unmaps the last page of badger's mapping of the
// file, which badger writes only when the memtable is full, so writes
// still land while msync over the whole mapping fails with ENOMEM. That is
// the failure after which badger has put a transaction's entries in the
// memtable and returns an error from Commit.
func breakMemtableSync(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || filepath.Dir(fields[5]) != dir || !strings.HasSuffix(fields[5], ".mem") {
			continue
		}
		_, end, _ := strings.Cut(fields[0], "-")
		e, err := strconv.ParseUint(end, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		page := uint64(os.Getpagesize())
		if _, _, errno := unix.Syscall(unix.SYS_MUNMAP, uintptr(e-page), uintptr(page), 0); errno != 0 {
			t.Fatalf("munmap: %v", errno)
		}
		return
	}
	t.Fatalf("no mapping of a memtable log of %s in /proc/self/maps", dir)
}

// A commit that badger fails after putting it in the memtable is stored
// although Commit returned an error. The store refuses every later write
// instead of reusing the version's sequence, and a reopened store has
// every version, the failed commit's included.
func TestACommitBadgerFailsAfterStoringItStopsLaterWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Logger: quietLogger, MaintainEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	set := func(s *Store, v int64) error {
		return s.Commit(&Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(v), Origin: "test"}}})
	}
	if err := set(s, 1); err != nil {
		t.Fatal(err)
	}
	breakMemtableSync(t, dir)
	err = set(s, 2)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "restart") {
		t.Errorf("commit with the log's sync failing: %v, want ErrFailed", err)
	}
	if err != nil {
		t.Logf("%v", err)
	}
	if err := set(s, 3); !errors.Is(err, ErrFailed) {
		t.Errorf("the next commit: %v, want it refused with ErrFailed", err)
	}
	if err := s.Trim(); !errors.Is(err, ErrFailed) {
		t.Errorf("trim: %v, want it refused with ErrFailed", err)
	}
	if h, err := s.History("x", 0); err != nil || len(h) != 2 {
		t.Errorf("history after the failure: %+v, %v", h, err)
	}
	if err := s.Close(); err != nil {
		t.Logf("close: %v", err)
	}

	s = openTest(t, Options{Dir: dir})
	if err := set(s, 3); err != nil {
		t.Fatal(err)
	}
	h, err := s.History("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, v := range h {
		got = append(got, v.Value.I)
	}
	if len(got) != 3 || got[0] != 3 || got[1] != 2 || got[2] != 1 {
		t.Errorf("history after a restart and one more commit: %v, want [3 2 1]", got)
	}
}
