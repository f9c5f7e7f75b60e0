package persist

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// logOnly is a hook that leaves badger without the transactions: what a
// power loss may do to badger's unsynced writes. Only the log has them.
var logOnly = &hooks{commitTxn: func(*badgerTxn) error { return nil }}

// crash ends s the way a crash leaves the commit log: badger is closed with
// whatever the commits put in it, and no checkpoint empties the log.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.closeOnce.Do(func() {
		s.stop()
		if err := s.db.Close(); err != nil {
			t.Errorf("close badger: %v", err)
		}
		s.wal.f.Close()
	})
}

// reopenAfterCrash opens the directory of a crashed store without hooks.
func reopenAfterCrash(t *testing.T, s *Store) *Store {
	t.Helper()
	crash(t, s)
	return openTest(t, Options{Dir: s.opts.Dir})
}

func setX(i int) *Batch {
	return &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(int64(i)), Origin: "cli", Time: at(time.Duration(i))}}}
}

// checkX asserts that x is last and has the versions 1..last.
func checkX(t *testing.T, s *Store, last int) {
	t.Helper()
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	if vars["x"].I != int64(last) {
		t.Errorf("x = %#v, want %d", vars["x"], last)
	}
	h, err := s.History("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != last {
		t.Fatalf("x has %d versions, want %d", len(h), last)
	}
	for i, v := range h {
		if v.Value.I != int64(last-i) || !v.Time.Equal(at(time.Duration(last-i))) {
			t.Fatalf("version %d is %#v", i, v)
		}
	}
}

func TestOpenReplaysCommitsBadgerLost(t *testing.T) {
	s := openTest(t, Options{hooks: logOnly})
	commit(t, s, &Batch{
		Vars:      []VarChange{{Name: "a", Value: whenlua.String("one"), Origin: "cli", Time: at(1)}, {Name: "gone", Value: whenlua.Int(1)}},
		JobStates: map[string]*whenlua.JobState{"j": {Cond: "a", Evaluated: true}, "k": {Cond: "b"}},
		Runs:      []whenlua.Run{{Serial: 1, Job: "j", State: whenlua.RunRunning, Output: []byte("out")}},
		Serial:    1,
	})
	commit(t, s, &Batch{
		Vars:      []VarChange{{Name: "a", Value: whenlua.String("two"), Origin: "lua", Time: at(2)}, {Name: "gone", Value: whenlua.Nil}},
		JobStates: map[string]*whenlua.JobState{"k": nil},
		Runs:      []whenlua.Run{{Serial: 1, Job: "j", State: whenlua.RunDone}},
		Serial:    2,
	})
	if vars, _ := s.Vars(); len(vars) != 0 {
		t.Fatalf("badger got the commits: %v", vars)
	}
	s = reopenAfterCrash(t, s)
	if s.replayed != 2 {
		t.Errorf("replayed %d records, want 2", s.replayed)
	}
	vars, err := s.Vars()
	if err != nil || len(vars) != 1 || vars["a"].S != "two" {
		t.Fatalf("vars %v, %v", vars, err)
	}
	h, err := s.History("a", 0)
	if err != nil || len(h) != 2 || h[0].Origin != "lua" || h[1].Value.S != "one" || !h[1].Time.Equal(at(1)) {
		t.Errorf("history of a: %#v, %v", h, err)
	}
	if h, _ := s.History("gone", 0); len(h) != 2 || !h[0].Value.IsNil() {
		t.Errorf("history of gone: %#v", h)
	}
	st, err := s.JobStates()
	if err != nil || len(st) != 1 || !st["j"].Evaluated {
		t.Errorf("job states %#v, %v", st, err)
	}
	r, err := s.Run(1)
	if err != nil || r.State != whenlua.RunDone || r.Output != nil {
		t.Errorf("run %#v, %v", r, err)
	}
	if n, err := s.Serial(); n != 2 || err != nil {
		t.Errorf("serial %d, %v", n, err)
	}
	// The replay was made durable and the log emptied.
	s = reopen(t, s)
	if s.replayed != 0 {
		t.Errorf("second open replayed %d records", s.replayed)
	}
	if vars, _ := s.Vars(); vars["a"].S != "two" {
		t.Errorf("after second open: %v", vars)
	}
}

func TestReopenAfterCloseHasNothingToReplay(t *testing.T) {
	s := openTest(t, Options{})
	for i := 1; i <= 20; i++ {
		commit(t, s, setX(i))
	}
	if s.replayed != 0 || s.wal.off == logHeaderSize {
		t.Fatalf("replayed %d, log at %d", s.replayed, s.wal.off)
	}
	s = reopen(t, s)
	if s.replayed != 0 {
		t.Errorf("replayed %d records after Close", s.replayed)
	}
	checkX(t, s, 20)
}

func TestATornLastRecordIsIgnored(t *testing.T) {
	cases := []struct {
		name string
		tear func(rec []byte)
	}{
		{"a byte of its payload flipped", func(rec []byte) { rec[len(rec)-3] ^= 0x40 }},
		{"its second half never written", func(rec []byte) { clear(rec[len(rec)/2:]) }},
		{"its header never written", func(rec []byte) { clear(rec[:recHeaderSize]) }},
		{"its length too big", func(rec []byte) { rec[6] = 0x7f }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openTest(t, Options{hooks: logOnly})
			commit(t, s, setX(1))
			commit(t, s, setX(2))
			start := s.wal.off
			commit(t, s, setX(3))
			end := s.wal.off
			crash(t, s)

			path := filepath.Join(s.opts.Dir, logFileName)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			rec := make([]byte, end-start)
			if _, err := f.ReadAt(rec, start); err != nil {
				t.Fatal(err)
			}
			c.tear(rec)
			if _, err := f.WriteAt(rec, start); err != nil {
				t.Fatal(err)
			}
			f.Close()

			s = openTest(t, Options{Dir: s.opts.Dir})
			if s.replayed != 2 {
				t.Errorf("replayed %d records, want 2", s.replayed)
			}
			checkX(t, s, 2)
		})
	}
}

func TestStaleRecordsOfAnOldEpochAreNeverReplayed(t *testing.T) {
	s := openTest(t, Options{})
	for i := 1; i <= 50; i++ {
		commit(t, s, setX(i))
	}
	// Close starts a new epoch; the 50 records stay in the file after it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Dir: s.opts.Dir, hooks: logOnly})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.String("new"), Time: at(100)}}})
	s = reopenAfterCrash(t, s)
	if s.replayed != 1 {
		t.Errorf("replayed %d records, want 1", s.replayed)
	}
	vars, _ := s.Vars()
	if vars["x"].S != "new" {
		t.Errorf("x = %#v: a stale record was replayed", vars["x"])
	}
	if h, _ := s.History("x", 0); len(h) != 51 {
		t.Errorf("x has %d versions, want 51", len(h))
	}
}

// TestARecordOfAnotherEpochFailsItsChecksum checks the nonce: even a stale
// record that carries the very sequence the replay expects is refused.
func TestARecordOfAnotherEpochFailsItsChecksum(t *testing.T) {
	dir := t.TempDir()
	l, err := openCommitLog(dir, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.f.Close()
	l.seq = 5
	if err := l.startEpoch(); err != nil {
		t.Fatal(err)
	}
	rec := func(val string) *pending {
		return &pending{rec: appendOp(make([]byte, recHeaderSize), opSet, []byte("v/x"), []byte(val))}
	}
	if err := l.append([]*pending{rec("a"), rec("b"), rec("c")}); err != nil {
		t.Fatal(err)
	}
	count := func() (n int, vals []string) {
		t.Helper()
		l.seq = 0
		n, err := l.replay(func(p []byte) error {
			_, _, v, _, err := decodeOp(p)
			vals = append(vals, string(v))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, vals
	}
	if n, vals := count(); n != 3 || fmt.Sprint(vals) != "[a b c]" {
		t.Fatalf("replayed %d: %v", n, vals)
	}
	// A new epoch starting at the same sequence, with a new nonce.
	l.seq = 5
	if err := l.startEpoch(); err != nil {
		t.Fatal(err)
	}
	if n, vals := count(); n != 0 {
		t.Fatalf("replayed %d stale records: %v", n, vals)
	}
	if err := l.append([]*pending{rec("d")}); err != nil {
		t.Fatal(err)
	}
	if n, vals := count(); n != 1 || vals[0] != "d" {
		t.Fatalf("replayed %d: %v", n, vals)
	}
}

func TestCheckpointsInTheMiddleOfALoop(t *testing.T) {
	s := openTest(t, Options{CheckpointBytes: 4 << 10})
	// 500 commits, and more until some are left to replay.
	last := 0
	for last < 500 || s.wal.off == logHeaderSize {
		last++
		commit(t, s, setX(last))
		if s.wal.off > logHeaderSize+4<<10 {
			t.Fatalf("log at %d after commit %d", s.wal.off, last)
		}
	}
	// One checkpoint at open, then one per ~4 KiB of records.
	if s.checkpoints < 5 {
		t.Errorf("%d checkpoints", s.checkpoints)
	}
	s = reopenAfterCrash(t, s)
	if s.replayed == 0 || s.replayed >= 100 {
		t.Errorf("replayed %d records", s.replayed)
	}
	checkX(t, s, last)
}

// faultyLog fails the next failSyncs Syncs and failWrites WriteAts.
type faultyLog struct {
	logFile
	failSyncs, failWrites *atomic.Int32
}

var errInjected = errors.New("injected I/O error")

func (f faultyLog) Sync() error {
	if f.failSyncs.Add(-1) >= 0 {
		return errInjected
	}
	return f.logFile.Sync()
}

func (f faultyLog) WriteAt(p []byte, off int64) (int, error) {
	if f.failWrites.Add(-1) >= 0 {
		return 0, errInjected
	}
	return f.logFile.WriteAt(p, off)
}

func TestAFailedLogWriteStoresNothing(t *testing.T) {
	cases := []struct {
		name          string
		syncs, writes int32
	}{
		{"a failed sync", 1, 0},
		{"a failed write", 0, 1},
		{"syncs failing a while", 3, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var syncs, writes atomic.Int32
			wrap := func(f logFile) logFile { return faultyLog{f, &syncs, &writes} }
			s := openTest(t, Options{hooks: &hooks{wrapLog: wrap}})
			commit(t, s, setX(1))
			syncs.Store(c.syncs)
			writes.Store(c.writes)
			// The failing commit; while the log stays broken the next
			// ones fail too.
			for syncs.Load() > 0 || writes.Load() > 0 {
				err := s.Commit(&Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(-1)}, {Name: "b", Value: whenlua.Int(2)}}})
				if !errors.Is(err, errInjected) {
					t.Fatalf("got %v", err)
				}
				t.Logf("error: %v", err)
			}
			check := func(s *Store, last int) {
				t.Helper()
				vars, err := s.Vars()
				if err != nil || len(vars) != 1 {
					t.Errorf("vars %v, %v", vars, err)
				}
				checkX(t, s, last)
			}
			check(s, 1)
			commit(t, s, setX(2))
			check(s, 2)
			check(reopenAfterCrash(t, s), 2)
		})
	}
}

func TestATransactionBadgerRefusesIsNotReplayed(t *testing.T) {
	refuse := errors.New("badger refused")
	var n atomic.Int32
	s := openTest(t, Options{hooks: &hooks{commitTxn: func(txn *badgerTxn) error {
		switch n.Add(1) {
		case 1:
			return txn.Commit()
		case 2:
			return refuse
		}
		return nil // in the log only
	}}})
	commit(t, s, setX(1))
	if err := s.Commit(&Batch{Vars: []VarChange{{Name: "b", Value: whenlua.Int(2)}}}); !errors.Is(err, refuse) {
		t.Fatalf("got %v", err)
	}
	commit(t, s, setX(2))
	s = reopenAfterCrash(t, s)
	if s.replayed != 1 {
		t.Errorf("replayed %d records, want 1", s.replayed)
	}
	vars, _ := s.Vars()
	if _, ok := vars["b"]; ok {
		t.Errorf("the refused batch was replayed: %v", vars)
	}
	checkX(t, s, 2)
}

func TestConcurrentCommitsShareSyncsAndKeepLogOrder(t *testing.T) {
	s := openTest(t, Options{CheckpointBytes: 64 << 10})
	const workers, each = 8, 100
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			var err error
			for i := range each {
				b := &Batch{Vars: []VarChange{
					{Name: "shared", Value: whenlua.Int(int64(w*each + i))},
					{Name: fmt.Sprint("w", w), Value: whenlua.Int(int64(i))},
				}}
				if err = s.Commit(b); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	// Replaying whatever is in the log gives the same state.
	s = reopenAfterCrash(t, s)
	after, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("before the crash %v\nafter %v", before, after)
	}
	if h, _ := s.History("shared", 0); len(h) != workers*each {
		t.Errorf("%d versions of shared", len(h))
	}
}

func TestRecordOperationsRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xff}, 70000)
	var rec []byte
	rec = appendOp(rec, opSet, []byte("v/x"), []byte("1"))
	rec = appendOp(rec, opDelete, []byte("s/j"), nil)
	rec = appendOp(rec, opSet, []byte("o/\x00\x01"), big)
	rec = appendOp(rec, opSet, []byte("v/e"), nil)
	var got []string
	for p := rec; len(p) > 0; {
		op, k, v, rest, err := decodeOp(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %q %d", op, k, len(v)))
		p = rest
	}
	if want := `[1 "v/x" 1 2 "s/j" 0 1 "o/\x00\x01" 70000 1 "v/e" 0]`; fmt.Sprint(got) != want {
		t.Errorf("got %v", got)
	}
	for _, bad := range [][]byte{{9}, {opSet}, {opSet, 5, 'a'}, {opSet, 1, 'a', 2, 'b'}, {opDelete, 0x80}} {
		if _, _, _, _, err := decodeOp(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func TestMappedHolesCountsTheSparsePartOfBadgersLogs(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "000001.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 8192))
	f.Truncate(1 << 20)
	f.Close()
	os.WriteFile(filepath.Join(dir, "other.sst"), nil, 0o600)
	if h := mappedHoles(dir); h < 1<<20-8192-4096 || h > 1<<20-8192 {
		t.Fatalf("holes = %d, want about %d", h, 1<<20-8192)
	}
}

// On Linux the commit log waits for its fdatasync in the network poller
// (aio_linux.go); where the kernel refuses native AIO it falls back to a
// plain fdatasync, and the store works the same.
func TestTheCommitLogSyncsThroughAIOWhereTheKernelTakesIt(t *testing.T) {
	for _, plain := range []bool{false, true} {
		s := openTest(t, Options{hooks: &hooks{plainSync: plain}})
		for i := range 3 {
			commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(int64(i)), Origin: "cli"}}})
		}
		df, ok := s.wal.f.(*dataSyncFile)
		if !ok {
			t.Fatalf("the commit log file is a %T", s.wal.f)
		}
		if plain && df.aio != nil {
			t.Error("plainSync, yet the log syncs through AIO")
		}
		if !plain && df.aio == nil {
			if _, err := newAIOSyncer(); err != nil {
				t.Logf("native AIO refused here (%v): the log uses fdatasync", err)
			} else {
				t.Error("native AIO works here, yet the log fell back to fdatasync")
			}
		}
		s = reopen(t, s)
		if v, err := s.Vars(); err != nil || v["x"].I != 2 {
			t.Fatalf("after reopen: %v, %v", v, err)
		}
	}
}

// The commit log writes its records with raw pwrite calls where it may
// (rawwrite_linux.go), and larger writes the ordinary way: either lands
// where it is told, and a failure names the file.
func TestTheCommitLogFileWritesWhatItIsGivenWhereItIsTold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	df := &dataSyncFile{File: f, fd: int(f.Fd())}
	df.raw = rawWritable(df.fd)
	if !df.raw {
		t.Logf("raw record writes are not made on this system or filesystem")
	}
	defer df.Close()
	small := make([]byte, rawWriteMax)
	large := make([]byte, 3<<20+17)
	rand.Read(small)
	rand.Read(large)
	if n, err := df.WriteAt(small, 12345); err != nil || n != len(small) {
		t.Fatalf("WriteAt of %d bytes: %d, %v", len(small), n, err)
	}
	at := int64(12345 + len(small) + 100)
	if n, err := df.WriteAt(large, at); err != nil || n != len(large) {
		t.Fatalf("WriteAt of %d bytes: %d, %v", len(large), n, err)
	}
	got := make([]byte, at+int64(len(large)))
	if _, err := df.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 12345)
	if !bytes.Equal(got[:12345], zeros) || !bytes.Equal(got[12345:12345+len(small)], small) ||
		!bytes.Equal(got[12345+len(small):at], zeros[:100]) || !bytes.Equal(got[at:], large) {
		t.Fatal("the file does not hold what was written where it was written")
	}
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rdf := &dataSyncFile{File: ro, fd: int(ro.Fd()), raw: df.raw}
	defer rdf.Close()
	_, err = rdf.WriteAt([]byte("x"), 0)
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != path || !errors.Is(err, syscall.EBADF) {
		t.Fatalf("write to a read-only file: %v, want a PathError naming it, EBADF", err)
	}
}

// Many syncs in a row each see their own completion: a wait that could
// miss one (the poller takes an event whenever any thread polls) hangs
// here, so the test fails on a deadline instead.
func TestManySyncsInARowAllComplete(t *testing.T) {
	a, err := newAIOSyncer()
	if err != nil {
		t.Skipf("native AIO refused here: %v", err)
	}
	defer a.destroy()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	// Another goroutine keeps waking on short timers, so that other
	// threads poll the network poller while the syncs run.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Microsecond):
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		for i := range 3000 {
			// Every other sync has nothing to write: its completion
			// comes at once, racing the wait.
			if i%2 == 0 {
				if _, err := f.WriteAt([]byte{byte(i)}, int64(i)); err != nil {
					done <- err
					return
				}
			}
			if err := a.sync(fd); err != nil {
				done <- fmt.Errorf("sync %d: %w", i, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("a sync still waits for its completion after 2 minutes")
	}
}
