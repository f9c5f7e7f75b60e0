// Package persist is whenlua's durable store: variables with their version
// history, when-job evaluation states, run records and the JOBSERIAL
// counter, kept in one badger database.
//
// Key layout (all values compact binary unless said otherwise):
//
//	v/<name>                                   current value (whenlua.Value.AppendBinary)
//	h/<name>\x00<be unix nanos><be seq>        one version: origin and value
//	s/<job>                                    a when-job's JobState
//	r/<be serial>                              a run record without its output (JSON)
//	o/<be serial>                              that run's stored output
//	m/serial                                   the JOBSERIAL counter (be uint64)
//
// Every Commit is one badger transaction: all or nothing. Badger runs with
// SyncWrites off; a Commit is made durable by one record in the store's own
// commit log (Dir/commit.log, see wal.go and durable.go), fdatasynced before
// the transaction is committed, and replayed by Open after a crash. Retention (history per variable, run
// records) is applied by Trim, which a background goroutine also calls
// periodically together with badger's value-log GC.
package persist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultHistoryKeep   = 1000
	DefaultRunsKeep      = 10000
	DefaultMaintainEvery = 10 * time.Minute
)

// Badger tuning. The defaults are sized for a big database (~86 MiB of heap
// right after open); these keep the heap near 11 MiB. The memtable size also
// fixes the largest transaction badger accepts: 15% of it in estimated bytes
// (1.2 MiB) and that divided by a skiplist node (~13,000 entries). Values of
// at least valueThreshold bytes live in the value log, and then count only
// as key + a 12-byte pointer against that limit, so a batch of 100 variables
// of 64 KiB plus 10,000 job states fits in one transaction.
const (
	memTableSize   = 8 << 20
	valueThreshold = 32
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("store closed")

// ErrTooBig is wrapped by Commit when a batch cannot be written as one
// transaction; nothing of it was stored.
var ErrTooBig = errors.New("batch too big for one transaction")

// Options configure a Store.
type Options struct {
	// Dir is the badger directory, created 0700 when missing.
	Dir string
	// HistoryKeep is how many versions are kept per variable (0: 1000).
	// The newest version is never trimmed.
	HistoryKeep int
	// HistoryMaxAge trims versions older than this (0: no age limit). The
	// newest version of a variable is never trimmed.
	HistoryMaxAge time.Duration
	// RunsKeep is how many run records are kept (0: 10000), the oldest
	// trimmed first; a run in state running is never trimmed.
	RunsKeep int
	// Logger receives the store's and badger's messages (nil: slog.Default()).
	Logger *slog.Logger
	// MaintainEvery is the period of the background retention trim and
	// value-log GC (0: 10 minutes; negative: no background maintenance).
	MaintainEvery time.Duration
	// CheckpointBytes is the size of the commit log's records after which
	// badger is synced and the log starts over (0: DefaultCheckpointBytes).
	// It bounds the replay after a crash; each checkpoint costs a few syncs.
	CheckpointBytes int64

	hooks *hooks // fault injection in tests
}

// Store is the durable store. Its methods are safe for concurrent use;
// Close waits for the calls in progress.
type Store struct {
	opts Options
	log  *slog.Logger
	db   *badger.DB

	// mu is held shared by every call and exclusively by Close.
	mu     sync.RWMutex
	closed bool

	// seq orders the versions written within one nanosecond. It starts at
	// the wall clock of Open so that it keeps growing across restarts.
	seq atomic.Uint64

	// trimMu serializes Trim calls (the maintenance goroutine and callers).
	trimMu sync.Mutex

	// wal is the commit log. It is used by Open, by the goroutine leading
	// a group commit (see submit) and by Close, one at a time.
	wal *commitLog
	// groupMu guards queue, spare and leading.
	groupMu sync.Mutex
	queue   []*pending // commits waiting for the next group
	spare   []*pending // the previous group's slice, for reuse
	leading bool       // a goroutine is writing groups

	roomy roomy // a recent reading of ample free space (space.go)

	replayed    int // records replayed by Open
	checkpoints int // checkpoints done, on the leading goroutine

	cancel context.CancelFunc // stops the maintenance goroutine
	done   chan struct{}      // closed when the maintenance goroutine has returned

	// Compaction (compact.go).
	stopCompact context.CancelFunc // stops the compaction goroutine, in Close after the last write
	writing     atomic.Int64       // writes in progress
	lastWrite   atomic.Int64       // when the last write ended, unix nanoseconds
	compactCh   chan struct{}      // wakes the compaction goroutine
	compactDone chan struct{}      // closed when it has returned
	compactions atomic.Int64       // compactions done
	polls       atomic.Int64       // looks at level 0
	linger      time.Duration      // compactLinger, or a test's

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating when needed) the database in opts.Dir, replays the
// commits of the commit log that badger may have lost in a crash, and
// starts the maintenance goroutine unless opts.MaintainEvery is negative.
// Only one process can have a database open.
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
	if opts.CheckpointBytes <= 0 {
		opts.CheckpointBytes = DefaultCheckpointBytes
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	bo := badgerOptions(opts.Dir, opts.Logger)
	linger := compactLinger
	if h := opts.hooks; h != nil {
		if h.memTableSize > 0 {
			bo.MemTableSize = h.memTableSize
		}
		if h.compactLinger > 0 {
			linger = h.compactLinger
		}
	}
	db, err := openBadger(bo)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cctx, stopCompact := context.WithCancel(context.Background())
	s := &Store{
		opts:   opts,
		log:    opts.Logger,
		db:     db,
		cancel: cancel,
		done:   make(chan struct{}),
		linger: linger,

		stopCompact: stopCompact,
		compactCh:   make(chan struct{}, 1),
		compactDone: make(chan struct{}),
	}
	// The compaction goroutine runs from here: the replay writes, and
	// badger may have flushed memtables at its own open.
	go s.compactLoop(cctx)
	s.writeBegin()
	err = s.openLog()
	s.writeEnd()
	if err != nil {
		cancel()
		stopCompact()
		<-s.compactDone
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	s.seq.Store(uint64(max(time.Now().UnixNano(), 0)))
	if opts.MaintainEvery > 0 {
		go s.maintain(ctx, opts.MaintainEvery)
	} else {
		close(s.done)
	}
	return s, nil
}

// openBadger opens badger with bo, which has no compactor. badger's Open
// queues the memtables a crash left behind for flushing, NumMemtables at a
// time besides the one being flushed; with more than that, and level 0 at
// its stall (a crash while writes waited for a compaction), the queue waits
// for a compaction that nothing would run, and Open never returns. Such a
// directory is first opened with badger's compactors, which flush and
// compact it, and closed.
func openBadger(bo badger.Options) (*badger.DB, error) {
	entries, err := os.ReadDir(bo.Dir)
	if err != nil {
		return nil, err
	}
	mems := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".mem") {
			mems++
		}
	}
	if mems > bo.NumMemtables+1 {
		o := bo
		o.NumCompactors = 2
		db, err := badger.Open(o)
		if err != nil {
			return nil, err
		}
		if err := db.Close(); err != nil {
			return nil, err
		}
	}
	return badger.Open(bo)
}

// badgerOptions returns the small tuning described at memTableSize.
func badgerOptions(dir string, log *slog.Logger) badger.Options {
	o := badger.DefaultOptions(dir)
	o.SyncWrites = false // the commit log makes commits durable
	// A Commit's transaction only writes, and the leading goroutine
	// commits the transactions one at a time (durable.go): none can
	// conflict, so badger need not track the keys of each.
	o.DetectConflicts = false
	o.Logger = badgerLogger{log.With("component", "badger")}
	o.MemTableSize = memTableSize
	o.NumMemtables = 2
	o.BlockCacheSize = 8 << 20
	o.IndexCacheSize = 4 << 20
	o.ValueLogFileSize = 16 << 20
	o.BaseTableSize = 1 << 20
	o.NumLevelZeroTables = 2
	o.NumLevelZeroTablesStall = 4
	o.NumCompactors = 0 // the store compacts on its own (compact.go)
	o.ValueThreshold = valueThreshold
	return o
}

// Close stops the maintenance goroutine, waits for the calls in progress,
// then stops the compaction goroutine (which those calls may need), makes
// badger durable with an empty commit log (a checkpoint) and closes the
// database. Calls after the first return its result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		var errs []error
		if err := s.checkpoint(); err != nil {
			errs = append(errs, err)
		}
		if err := s.db.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := s.wal.f.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close store: %w", err)
		}
	})
	return s.closeErr
}

// stop ends the store's goroutines and refuses every later call, once the
// calls in progress have returned. The compaction goroutine stops last:
// those calls may need it.
func (s *Store) stop() {
	s.cancel()
	<-s.done
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stopCompact()
	<-s.compactDone
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
		// Retention and GC write too: on a nearly full disk they wait.
		if err := s.checkSpace(spaceMargin); err != nil {
			s.log.Warn("store maintenance skipped", "err", err)
			continue
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
// gcOnce rewrites one value-log file. The GC moves live values with
// SyncWrites off and then deletes the old file; badger defers the deletion
// while an iterator is open, so one is held across the GC until the moved
// values are synced: a power loss in between finds them in the old file.
func (s *Store) gcOnce() error {
	s.writeBegin()
	defer s.writeEnd()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{})
	err := s.db.RunValueLogGC(0.5)
	if err == nil {
		err = s.syncBadger()
	}
	it.Close() // the old file is deleted here, after the sync
	return err
}

func (s *Store) gc(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	for range 16 {
		if ctx.Err() != nil {
			return nil
		}
		if err := s.gcOnce(); err != nil {
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
// line is formatted only when its level is enabled: badger logs four debug
// lines on every commit, and more each time the compaction watch reads the
// levels (compact.go).
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.log(slog.LevelError, f, a) }
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
