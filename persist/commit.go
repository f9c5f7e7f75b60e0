package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

// Batch and VarChange are the root package's: what one Commit writes.
type (
	Batch     = whenlua.Batch
	VarChange = whenlua.VarChange
)

// trimPerCommit bounds the versions of one variable, and the run records,
// that one commit deletes for retention. Past a bound by one, a commit
// deletes one; more is left over only when the bound was lowered, and
// Trim (run at Open and periodically) takes the rest.
const trimPerCommit = 64

// seqRange is the sequences of a variable's stored versions: first..last,
// every one of them present (retention deletes the oldest first); empty
// when last < first.
type seqRange struct{ first, last uint64 }

// runCount is the number of run records stored, and a serial below which
// there is none.
type runCount struct {
	n     int
	floor uint64
}

// Commit writes b as one badger transaction, synced to disk before it
// returns nil (SyncWrites); when it returns an error nothing of b is
// stored, except for one wrapping ErrFailed: badger failed after it may
// have stored b, and every later write is refused until the store is
// opened again. Retention is part of the transaction: a variable past
// HistoryKeep versions loses its oldest ones, and the run records past
// RunsKeep their oldest finished ones. Invalid names or values give an
// error wrapping whenlua.ErrInvalid; a batch badger cannot take in one
// transaction (about 13,000 keys, and 1.2 MiB of keys and values under
// 1 KiB; larger values count as a pointer) one wrapping ErrTooBig; a disk
// without room one wrapping ErrDiskFull.
func (s *Store) Commit(b *Batch) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := s.enter(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	defer s.mu.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.failed != nil {
		return fmt.Errorf("commit: %w", s.failed)
	}
	if err := s.checkSpace(batchBytes(b)); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	w := &writer{s: s, txn: txn, seqs: make(map[string]seqRange, len(b.Vars)), runs: s.runs}
	err := w.fill(b)
	if err == nil {
		err = s.commitTxn(txn)
	}
	switch {
	case err == nil:
		for name, r := range w.seqs {
			s.seqs[name] = r
		}
		s.runs = w.runs
		return nil
	case errors.Is(err, badger.ErrTxnTooBig):
		return fmt.Errorf("commit: %w (%d variables, %d job states, %d runs; failed at entry %d): %w",
			ErrTooBig, len(b.Vars), len(b.JobStates), len(b.Runs), w.entries, err)
	}
	return fmt.Errorf("commit: %w", err)
}

// ErrFailed is wrapped by every write after badger failed a commit in a
// way that may have stored it; the daemon must be restarted.
var ErrFailed = errors.New("store failed")

// ErrLocked is wrapped by Open when another process has the database open
// (badger allows one process at a time, even for reading).
var ErrLocked = errors.New("the store is in use by another process")

// ErrNeedsRecovery is wrapped by a read-only Open of a database that was
// not closed cleanly (a copy taken while a daemon ran, or after a crash):
// badger must recover its log, which writes. Open a copy of it instead.
var ErrNeedsRecovery = errors.New("the store was not closed cleanly and needs a recovery, which a read-only open cannot do")

// errReadOnly refuses every write to a store opened with Options.ReadOnly.
var errReadOnly = errors.New("store opened read-only")

// commitTxn commits txn for a writer holding writeMu. Badger refuses some
// transactions before writing anything (too big, writes blocked, closed);
// any other error may come after the entries went into the memtable, where
// they are read and will be flushed, and only the sync of its log failed.
// What is stored is then unknown, and so is whether the bookkeeping
// (sequences, run count) still matches it: the store refuses every later
// write until it is opened again, which reads both from what is stored.
func (s *Store) commitTxn(txn *badger.Txn) error {
	err := txn.Commit()
	if err == nil || errors.Is(err, badger.ErrTxnTooBig) || errors.Is(err, badger.ErrBlockedWrites) || errors.Is(err, badger.ErrDBClosed) {
		return err
	}
	s.failed = fmt.Errorf("%w: %s; restart the daemon", ErrFailed, oneLine(err.Error()))
	s.log.Error("store failed: a commit may be stored although badger returned an error; refusing writes until a restart", "err", err)
	return s.failed
}

// batchBytes is about what b writes, for the free-space check.
func batchBytes(b *Batch) int {
	n := 0
	for _, c := range b.Vars {
		n += 2 * (len(c.Name) + len(c.Value.S) + len(c.Origin) + 48)
	}
	for j, st := range b.JobStates {
		n += len(j) + 64
		if st != nil {
			n += len(st.Cond) + 32*len(st.Snapshot)
		}
	}
	for _, r := range b.Runs {
		n += len(r.Output) + 512
	}
	for _, e := range b.Evals {
		n += len(e.Job) + 256
		for _, v := range e.Values {
			n += len(v.Name) + 2*len(v.Value.S) + 64
		}
	}
	return n
}

// writer fills one commit's transaction. What it changes of the store's
// bookkeeping is kept apart until the transaction is committed.
type writer struct {
	s       *Store
	txn     *badger.Txn
	entries int
	seqs    map[string]seqRange // the variables this commit writes
	runs    runCount
}

func (w *writer) set(k, v []byte) error {
	w.entries++
	return w.txn.Set(k, v)
}

func (w *writer) del(k []byte) error {
	w.entries++
	return w.txn.Delete(k)
}

// fill turns the batch into key writes, retention included.
func (w *writer) fill(b *Batch) error {
	now := w.s.opts.Now()
	var names []string // in first-write order
	for _, c := range b.Vars {
		r, ok := w.seqs[c.Name]
		if !ok {
			var err error
			if r, err = w.s.seqRange(w.txn, c.Name); err != nil {
				return err
			}
			names = append(names, c.Name)
		}
		r.last++
		w.seqs[c.Name] = r
		t := c.Time
		if t.IsZero() {
			t = now
		}
		ver, val := encodeVersion(t, c.Origin, c.Mark, c.Value)
		if err := w.set(historyKey(c.Name, r.last), ver); err != nil {
			return err
		}
		var err error
		if c.Value.IsNil() {
			err = w.del(varKey(c.Name))
		} else {
			err = w.set(varKey(c.Name), val)
		}
		if err != nil {
			return err
		}
	}
	for _, name := range names {
		r := w.seqs[name]
		for cut := min(whenlua.KeepFrom(r.first, r.last, w.s.opts.HistoryKeep), r.first+trimPerCommit); r.first < cut; r.first++ {
			if err := w.del(historyKey(name, r.first)); err != nil {
				return err
			}
		}
		w.seqs[name] = r
	}
	jobs := make([]string, 0, len(b.JobStates))
	for j := range b.JobStates {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	for _, j := range jobs {
		var err error
		if st := b.JobStates[j]; st == nil {
			err = w.del(stateKey(j))
		} else {
			err = w.set(stateKey(j), encodeJobState(st))
		}
		if err != nil {
			return err
		}
	}
	if err := w.putRuns(b.Runs); err != nil {
		return err
	}
	for _, e := range b.Evals {
		if err := w.set(evalKey(e.Job, e.Seq), encodeEval(e)); err != nil {
			return err
		}
	}
	if b.Serial != 0 {
		if err := w.set(keySerial, binary.BigEndian.AppendUint64(nil, b.Serial)); err != nil {
			return err
		}
	}
	return nil
}

// putRuns writes the run records, counts the new ones and deletes the
// oldest finished ones past RunsKeep.
func (w *writer) putRuns(runs []whenlua.Run) error {
	for _, r := range runs {
		enc, err := encodeRun(r)
		if err != nil {
			return fmt.Errorf("run %d: %w", r.Serial, err)
		}
		k := runKey(r.Serial)
		switch _, err := w.txn.Get(k); {
		case errors.Is(err, badger.ErrKeyNotFound):
			w.runs.n++ // new (the transaction sees its own writes)
		case err != nil:
			return err
		}
		if err := w.set(k, enc); err != nil {
			return err
		}
		if len(r.Output) > 0 {
			err = w.set(outputKey(r.Serial), r.Output)
		} else {
			err = w.del(outputKey(r.Serial))
		}
		if err != nil {
			return err
		}
	}
	if excess := w.runs.n - w.s.opts.RunsKeep; excess > 0 {
		return w.trimRuns(min(excess, trimPerCommit), 4*trimPerCommit)
	}
	return nil
}

// trimRuns deletes up to n of the oldest run records that are not running
// or queued, with their output. It passes over at most maxSkip of those,
// which bounds a commit's cost.
func (w *writer) trimRuns(n, maxSkip int) error {
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: prefixRun})
	defer it.Close()
	deleted, floor, kept := 0, uint64(0), false
	skipped := 0
	for it.Seek(runKey(w.runs.floor)); it.Valid() && deleted < n && skipped < maxSkip; it.Next() {
		item := it.Item()
		serial := binary.BigEndian.Uint64(item.Key()[len(prefixRun):])
		var running bool
		if err := w.s.faults.value(item, func(b []byte) error {
			r, err := decodeRun(b)
			running = r.State == whenlua.RunRunning || r.State == whenlua.RunQueued
			return err
		}); err != nil {
			return err
		}
		if running {
			if !kept {
				floor, kept = serial, true
			}
			skipped++
			continue
		}
		if err := w.del(runKey(serial)); err != nil {
			return err
		}
		if err := w.del(outputKey(serial)); err != nil {
			return err
		}
		deleted++
		if !kept {
			floor = serial + 1
		}
	}
	w.runs.n -= deleted
	if deleted > 0 || kept {
		w.runs.floor = floor
	}
	return nil
}

// seqRange returns the stored range of name's versions, from the store's
// bookkeeping or else from txn (the first time name is written after Open).
// The caller holds writeMu.
func (s *Store) seqRange(txn *badger.Txn, name string) (seqRange, error) {
	if r, ok := s.seqs[name]; ok {
		return r, nil
	}
	prefix := historyPrefix(name)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	it.Rewind()
	if !it.Valid() {
		it.Close()
		return seqRange{first: 1}, nil
	}
	var r seqRange
	_, r.first, _ = parseHistoryKey(it.Item().Key())
	it.Close()
	it = txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
	defer it.Close()
	it.Seek(seekLast(prefix, 8))
	if !it.Valid() {
		return r, fmt.Errorf("history of %s: no last version", name)
	}
	_, r.last, _ = parseHistoryKey(it.Item().Key())
	return r, nil
}

// countRuns counts the run records (Open).
func (s *Store) countRuns() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixRun})
		defer it.Close()
		s.runs = runCount{}
		for it.Rewind(); it.Valid(); it.Next() {
			if s.runs.n == 0 {
				s.runs.floor = binary.BigEndian.Uint64(it.Item().Key()[len(prefixRun):])
			}
			s.runs.n++
		}
		return nil
	})
}
