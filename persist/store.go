// Package persist is whenlua's durable store, whenlua.Store on badger:
// variables with their version history, when-job evaluation states, run
// records and the JOBSERIAL counter, kept in one badger database. A Store
// owns its database and one maintenance goroutine; its methods are safe for
// concurrent use (in the daemon, the engine goroutine commits and the
// server's handlers read).
//
// Key layout (all values compact binary unless said otherwise):
//
//	v/<name>                 current value (whenlua.Value.AppendBinary)
//	h/<name>/<be seq>        one version: its time, origin, set mark and value
//	s/<job>                  a job's JobState (evaluation state, last success, alarm)
//	r/<be serial>            a run record without its output (JSON)
//	o/<be serial>            that run's stored output
//	m/serial                 the JOBSERIAL counter (be uint64)
//	e/<job>/<slot>           one of a job's EvalKeep newest evaluations, its be
//	                         seq first; seq takes slot seq mod EvalKeep
//
// A version's sequence counts the versions of its variable from 1, so the
// history keeps the order of the commits whatever the clock does; its time
// is data.
//
// Durability is badger's: SyncWrites is on, and every Commit is one badger
// transaction, synced before Commit returns. Retention is held within the
// commits (a commit that passes a bound deletes the oldest versions or runs
// in the same transaction), and Trim, also called periodically with
// badger's value-log GC, applies an age limit and a lowered bound.
package persist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/whenlua/whenlua"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultHistoryKeep   = whenlua.DefaultHistoryKeep
	DefaultRunsKeep      = whenlua.DefaultRunsKeep
	DefaultMaintainEvery = 10 * time.Minute
)

// Badger tuning for a small daemon: badger's defaults are sized for a big
// database and hold a large heap from the moment it opens; a smaller
// memtable keeps a resident daemon small (docs/benchmarks.md has the heap
// before and after, BenchmarkOpen measures it). The memtable size also fixes the largest transaction badger accepts: 15%
// of it in estimated bytes (1.2 MiB) and about 13,000 entries. Values below
// valueThreshold bytes live in the LSM tree, so that a commit of small
// values writes and syncs the memtable's log alone; larger ones live in the
// value log and count only as a pointer against the transaction's limit.
const (
	memTableSize   = 8 << 20
	valueThreshold = 1 << 10
)

// Errors of the store, shared with the other implementations of
// whenlua.Store.
var (
	// ErrClosed is wrapped by every method of a Store after Close.
	ErrClosed = whenlua.ErrStoreClosed
	// ErrTooBig is wrapped by Commit when a batch cannot be written as one
	// transaction; nothing of it was stored.
	ErrTooBig = whenlua.ErrStoreTooBig
	// ErrDiskFull is wrapped by Commit when the disk lacks room for the
	// batch; nothing of it was stored.
	ErrDiskFull = whenlua.ErrDiskFull
)

// Options configure a Store.
type Options struct {
	// Dir is the badger directory, created 0700 when missing.
	Dir string
	// HistoryKeep is how many versions are kept per variable (0: 1000).
	// Each commit holds the bound; the newest version is never trimmed.
	HistoryKeep int
	// HistoryMaxAge trims versions older than this in Trim (0: no age
	// limit). The newest version of a variable is never trimmed.
	HistoryMaxAge time.Duration
	// RunsKeep is how many run records are kept (0: 10000), the oldest
	// trimmed first; a run in state running or queued is never trimmed.
	RunsKeep int
	// Logger receives the store's and badger's messages (nil: slog.Default()).
	Logger *slog.Logger
	// MaintainEvery is the period of the background Trim and value-log GC
	// (0: 10 minutes; negative: no background maintenance).
	MaintainEvery time.Duration
	// Now gives the time of a version committed without one, and the
	// present for the age limit (nil: time.Now).
	Now func() time.Time
	// Recover opens a store whose values cannot all be read (a damaged
	// value log) by deleting the entries that cannot be read, each logged
	// as dropped; any other damage is still refused.
	Recover bool
	// ReadOnly opens an existing database for reading only (badger's
	// ReadOnly): nothing is written, no maintenance runs, and Commit and
	// Trim fail. Badger refuses it while another process has the database
	// open: a daemon's store is read from a copy of its directory.
	ReadOnly bool

	memTableSize int64 // tests: a smaller memtable, for flushes sooner
}

// Store is the badger implementation of whenlua.Store. Its methods are
// safe for concurrent use; Close waits for the calls in progress.
type Store struct {
	opts Options
	log  *slog.Logger
	db   *badger.DB
	// faults tells a value badger could not read (damage.go).
	faults *faults

	// mu is held shared by every call and exclusively by Close.
	mu     sync.RWMutex
	closed bool

	// writeMu serializes the writers (Commit, Trim) and guards what they
	// keep between calls: the sequence range of each variable's versions
	// and the run records' count.
	writeMu sync.Mutex
	seqs    map[string]seqRange
	runs    runCount
	// failed is set, for good, when badger failed a commit after it may
	// have stored it (commitTxn): every later write is refused with it.
	failed error

	// release returns memory to the system after a large read (read.go).
	releaseMu sync.Mutex
	release   *time.Timer

	cancel context.CancelFunc // stops the maintenance goroutine
	done   chan struct{}      // closed when the maintenance goroutine has returned

	closeOnce sync.Once
	closeErr  error
}

var _ whenlua.Store = (*Store)(nil)

// Open opens (creating when needed) the database in opts.Dir and starts
// the maintenance goroutine unless opts.MaintainEvery is negative. A
// damaged database is refused with a *DamageError naming the file. Only
// one process can have a database open.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("open store: no directory")
	}
	if opts.HistoryKeep <= 0 {
		opts.HistoryKeep = DefaultHistoryKeep
	}
	if opts.RunsKeep <= 0 {
		opts.RunsKeep = DefaultRunsKeep
	}
	if opts.HistoryMaxAge < 0 {
		opts.HistoryMaxAge = 0
	}
	if opts.MaintainEvery == 0 {
		opts.MaintainEvery = DefaultMaintainEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReadOnly {
		opts.MaintainEvery, opts.Recover = -1, false
		if err := checkClosedCleanly(opts.Dir); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := checkOldCommitLog(opts.Dir); err != nil {
		return nil, err
	}
	f := &faults{dir: opts.Dir}
	bo := badgerOptions(opts.Dir, opts.Logger, f)
	if opts.memTableSize > 0 {
		bo.MemTableSize = opts.memTableSize
	}
	bo.ReadOnly = opts.ReadOnly
	db, err := openChecked(bo, f, opts.Recover, opts.Logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		opts:   opts,
		log:    opts.Logger,
		db:     db,
		faults: f,
		seqs:   make(map[string]seqRange),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	if opts.ReadOnly {
		s.failed = errReadOnly
	} else if err := s.migrate(); err != nil {
		cancel()
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	if err := s.countRuns(); err != nil {
		cancel()
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	if opts.MaintainEvery > 0 {
		go s.maintain(ctx, opts.MaintainEvery)
	} else {
		close(s.done)
	}
	return s, nil
}

// checkClosedCleanly refuses, for a read-only open, a database that keeps a
// memtable log: badger removes it at a clean close, and replays it, which
// writes, at the next open. Badger's own read-only open would fail there
// too (ErrTruncateNeeded), but only after it has started goroutines that
// it does not stop. A database in use keeps one too: badger's lock on the
// directory (flock) tells it apart.
func checkClosedCleanly(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		d, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		defer d.Close()
		if err := syscall.Flock(int(d.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
			return fmt.Errorf("open store %s: %w", dir, ErrLocked)
		}
		return fmt.Errorf("open store %s: %w", dir, ErrNeedsRecovery) // closing d releases the lock
	}
	return nil
}

// badgerOptions returns the small-daemon tuning described at memTableSize,
// with every write synced and every read checked.
func badgerOptions(dir string, log *slog.Logger, f *faults) badger.Options {
	o := badger.DefaultOptions(dir)
	o.SyncWrites = true
	// The writers hold writeMu: no two transactions can conflict.
	o.DetectConflicts = false
	o.Logger = badgerLogger{log.With("component", "badger"), f}
	o.MemTableSize = memTableSize
	o.NumMemtables = 2
	o.BlockCacheSize = 8 << 20
	o.IndexCacheSize = 4 << 20
	o.ValueLogFileSize = 16 << 20
	o.BaseTableSize = 1 << 20
	o.NumLevelZeroTables = 2
	o.NumLevelZeroTablesStall = 4
	o.NumCompactors = 2
	o.ValueThreshold = valueThreshold
	// Every block is checked when read, and every value read from the
	// value log; Open checks each table whole before badger opens it
	// (damage.go).
	o.ChecksumVerificationMode = options.OnBlockRead
	o.VerifyValueChecksum = true
	return o
}

// Close stops the maintenance goroutine, waits for the calls in progress
// and closes the database. Calls after the first return its result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.done
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.releaseMu.Lock()
		if s.release != nil {
			s.release.Stop()
		}
		s.releaseMu.Unlock()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close store: %w", err)
		}
	})
	return s.closeErr
}

// enter takes the shared lock for one call; the caller must call s.mu.RUnlock.
func (s *Store) enter() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// maintain runs on its own goroutine until ctx is done: at once and then
// every period it applies retention and reclaims value-log space.
func (s *Store) maintain(ctx context.Context, every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for first := true; ; first = false {
		// The first pass runs at once: retention lowered at a restart
		// applies from the start.
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if err := s.Trim(); err != nil {
			s.log.Error("store retention", "err", err)
		}
		if err := s.gc(ctx); err != nil {
			s.log.Error("store value-log gc", "err", err)
		}
	}
}

// gc runs badger's value-log GC until it finds nothing worth rewriting.
func (s *Store) gc(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	for range 16 {
		if ctx.Err() != nil {
			return nil
		}
		if err := s.db.RunValueLogGC(0.5); err != nil {
			if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
				return nil
			}
			return err
		}
	}
	return nil
}

// badgerLogger forwards badger's log lines to slog. Badger's informational
// messages (table counts, replay progress) are logged at debug level. A
// line is formatted only when its level is enabled: badger logs debug
// lines on every commit. Error lines also go to the fault tracker.
type badgerLogger struct {
	l *slog.Logger
	f *faults // told every error line
}

func (b badgerLogger) Errorf(f string, a ...any) {
	b.f.saw(fmt.Sprintf(f, a...))
	b.log(slog.LevelError, f, a)
}

func (b badgerLogger) Warningf(f string, a ...any) { b.log(slog.LevelWarn, f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.log(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.log(slog.LevelDebug, f, a) }

func (b badgerLogger) log(level slog.Level, f string, a []any) {
	if b.l.Enabled(context.Background(), level) {
		b.l.Log(context.Background(), level, trimNL(fmt.Sprintf(f, a...)))
	}
}

func trimNL(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}

// Size returns the sizes badger keeps of its LSM tree and value log, in
// bytes (badger's own figures, refreshed by badger about once a minute).
func (s *Store) Size() (lsm, vlog int64, err error) {
	if err := s.enter(); err != nil {
		return 0, 0, err
	}
	defer s.mu.RUnlock()
	lsm, vlog = s.db.Size()
	return lsm, vlog, nil
}
