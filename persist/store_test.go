package persist

import (
	"os"
	"runtime"
	"testing"

	"github.com/whenlua/whenlua"
)

func TestOpenCreatesThePrivateDirectory(t *testing.T) {
	dir := t.TempDir() + "/state/db"
	openTest(t, Options{Dir: dir})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestASecondOpenOfTheSameDirectoryFails(t *testing.T) {
	s := openTest(t, Options{})
	if s2, err := Open(Options{Dir: s.opts.Dir, Logger: quietLogger, MaintainEvery: -1}); err == nil {
		s2.Close()
		t.Fatal("second open succeeded")
	}
}

// TestHeapAfterOpenIsSmall guards the badger tuning: with badger's defaults
// the heap is ~86 MiB right after open.
func TestHeapAfterOpenIsSmall(t *testing.T) {
	before := heapAlloc()
	s := openTest(t, Options{})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(1)}}})
	grew := heapAlloc() - before
	t.Logf("heap grew by %.1f MiB on open", float64(grew)/(1<<20))
	if grew > 32<<20 {
		t.Errorf("heap grew by %d MiB on open, want about 11", grew>>20)
	}
}

func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
