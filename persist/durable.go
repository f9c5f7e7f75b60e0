package persist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// Durability. Badger runs with SyncWrites off; a Commit is durable when its
// record is in the commit log (wal.go). The order for a group of commits:
//
//  1. write their records to the log and fdatasync it (one sync per group);
//     if that fails, no transaction is committed and the epoch is dropped by
//     a checkpoint, so that whatever of the records reached the disk is
//     never replayed;
//  2. commit their badger transactions, unsynced, in log order;
//  3. acknowledge. A transaction that badger refuses after its record is
//     durable is dropped the same way: by a checkpoint, which makes every
//     commit of the epoch durable in badger itself, before its error is
//     returned.
//
// Under kill -9 the page cache survives: badger's unsynced writes are kept,
// and Open replays the epoch on top of them, which rewrites the same keys
// with the same values in the same order. A commit killed between 1 and 2
// is applied whole by the replay; it was not acknowledged, so either outcome
// is allowed. Under power loss badger may lose any of its unsynced writes
// (not necessarily a suffix), but only writes made since the last
// checkpoint, and every acknowledged one of those has a durable record in
// the current epoch: the replay restores them all, in order. A record torn
// by the power loss was not acknowledged and ends the replay.
//
// Writes that are not commits are not logged: Trim's deletes may be undone
// by a replay of an older record (a trimmed version or run comes back and is
// trimmed again by the next Trim), and value-log GC only moves values.

// pending is one Commit waiting for its group to be written.
type pending struct {
	rec  []byte // recHeaderSize bytes for the header, then the payload
	txn  *badger.Txn
	err  error
	done chan struct{} // closed when err is set
}

// submit makes p durable and commits its transaction, sharing one log sync
// with the commits that wait at the same time. The first caller to find no
// group in progress leads: it writes the groups queued meanwhile, one after
// the other, until the queue is empty. The others wait for their result.
func (s *Store) submit(p *pending) error {
	s.groupMu.Lock()
	s.queue = append(s.queue, p)
	if s.leading {
		s.groupMu.Unlock()
		<-p.done
		return p.err
	}
	s.leading = true
	for len(s.queue) > 0 {
		group := s.queue
		s.queue = s.spare[:0]
		s.groupMu.Unlock()
		s.writeGroup(group)
		clear(group)
		s.groupMu.Lock()
		s.spare = group
	}
	s.leading = false
	s.groupMu.Unlock()
	return p.err
}

// writeGroup runs on the leading goroutine: it writes and syncs the records
// of group, commits their transactions in that order and releases them.
func (s *Store) writeGroup(group []*pending) {
	s.writeBegin()
	defer s.writeEnd()
	w := s.wal
	release := func(p *pending, err error) {
		p.err = err
		close(p.done)
	}
	if w.failed != nil {
		// Retry the checkpoint that failed: it drops the records that
		// must not be replayed, and then the store works again.
		if err := s.checkpoint(); err != nil {
			for _, p := range group {
				release(p, fmt.Errorf("commit log failed earlier: %w", err))
			}
			return
		}
	}
	if err := w.append(group); err != nil {
		err = s.dropEpoch(err)
		for _, p := range group {
			release(p, err)
		}
		return
	}
	var refused []*pending
	for _, p := range group {
		if err := s.commitTxn(p.txn); err != nil {
			p.err = err
			refused = append(refused, p)
			continue
		}
		release(p, nil)
	}
	for _, p := range refused {
		release(p, s.dropEpoch(p.err))
	}
	if len(refused) == 0 && w.off-logHeaderSize >= s.opts.CheckpointBytes {
		if err := s.checkpoint(); err != nil {
			s.log.Error("store checkpoint", "err", err)
		}
	}
}

// dropEpoch handles a failure that leaves records in the log that must not
// be replayed: a checkpoint drops them. It returns the error for their
// commits; when the checkpoint fails too, the store refuses every later
// commit (the records may be replayed at the next Open).
func (s *Store) dropEpoch(cause error) error {
	if s.wal.failed != nil {
		return cause
	}
	if err := s.checkpoint(); err != nil {
		s.wal.failed = err
		s.log.Error("store checkpoint after a failed commit", "err", err)
		return fmt.Errorf("%w (and the batch may still be applied at the next open: %v)", cause, err)
	}
	return cause
}

// commitTxn commits a transaction whose record is durable.
func (s *Store) commitTxn(txn *badger.Txn) error {
	if s.opts.hooks != nil && s.opts.hooks.commitTxn != nil {
		return s.opts.hooks.commitTxn(txn)
	}
	return txn.Commit()
}

// checkpoint makes badger durable and starts a new log epoch. It runs on
// the leading goroutine, in Open or in Close.
func (s *Store) checkpoint() error {
	if err := s.syncBadger(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := s.wal.startEpoch(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	s.wal.failed = nil
	s.checkpoints++
	return nil
}

// syncBadger makes every write badger has accepted so far durable. Badger's
// Sync covers only the current value-log file and memtable WAL; with
// SyncWrites off, a value-log file or a memtable rotated away since may still
// have unsynced pages, and new files unsynced directory entries. So every
// value-log and memtable file, and the directory, are synced too (cheap for
// files with nothing dirty). Sorted tables and the manifest are synced by
// badger when written.
func (s *Store) syncBadger() error {
	if err := s.db.Sync(); err != nil {
		return err
	}
	dir := s.opts.Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".vlog") && !strings.HasSuffix(name, ".mem") {
			continue
		}
		if err := syncPath(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return syncPath(dir)
}

// syncPath fsyncs a file or directory by name.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openLog opens the commit log, replays its current epoch into badger and
// starts a new epoch (Open).
func (s *Store) openLog() error {
	var wrap func(logFile) logFile
	plain := false
	if s.opts.hooks != nil {
		wrap, plain = s.opts.hooks.wrapLog, s.opts.hooks.plainSync
	}
	w, err := openCommitLog(s.opts.Dir, wrap, plain)
	if err != nil {
		return fmt.Errorf("open commit log: %w", err)
	}
	s.wal = w
	r := replayer{db: s.db}
	defer r.discard()
	n, err := w.replay(r.apply)
	if err == nil {
		err = r.commit()
	}
	if err == nil {
		err = s.checkpoint()
	}
	if err == nil && w.created {
		err = syncPath(s.opts.Dir)
	}
	if err != nil {
		w.f.Close()
		return err
	}
	s.replayed = n
	if n > 0 {
		s.log.Info("store: replayed the commit log", "records", n)
	}
	return nil
}

// replayer applies record payloads to badger, many records per transaction.
// A record may be split over two transactions: nothing reads the store
// during Open, and a crash in the middle of a replay replays it all again.
type replayer struct {
	db   *badger.DB
	txn  *badger.Txn
	held int // payload bytes the transaction refers to
}

// replayHold is how many payload bytes one replay transaction may refer to.
const replayHold = 4 << 20

func (r *replayer) apply(payload []byte) error {
	for p := payload; len(p) > 0; {
		op, k, v, rest, err := decodeOp(p)
		if err != nil {
			return err
		}
		p = rest
		for {
			if r.txn == nil {
				r.txn = r.db.NewTransaction(true)
			}
			if op == opSet {
				err = r.txn.Set(k, v)
			} else {
				err = r.txn.Delete(k)
			}
			if errors.Is(err, badger.ErrTxnTooBig) && r.held > 0 {
				if err := r.commit(); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			r.held += len(k) + len(v)
			break
		}
	}
	if r.held >= replayHold {
		return r.commit()
	}
	return nil
}

func (r *replayer) commit() error {
	if r.txn == nil {
		return nil
	}
	err := r.txn.Commit()
	r.txn, r.held = nil, 0
	return err
}

func (r *replayer) discard() {
	if r.txn != nil {
		r.txn.Discard()
	}
}

// hooks inject faults in tests; nil in production.
type hooks struct {
	// wrapLog wraps the commit log file.
	wrapLog func(logFile) logFile
	// commitTxn replaces the commit of a transaction whose record is durable.
	commitTxn func(*badger.Txn) error
	// memTableSize, when set, replaces badger's memtable size: flushes,
	// and so compactions, come sooner.
	memTableSize int64
	// compactLinger, when set, replaces compactLinger.
	compactLinger time.Duration
	// plainSync makes the commit log sync with fdatasync, not AIO.
	plainSync bool
}

// recPool keeps small record buffers between commits.
var recPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledRec is the largest record buffer put back in recPool.
const maxPooledRec = 64 << 10
