package persist

import (
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

// trimChunk is how many keys one of Trim's transactions deletes.
const trimChunk = 1000

// Trim applies retention to everything stored now: per variable it keeps
// the newest HistoryKeep versions younger than HistoryMaxAge, and always
// the newest one; of the run records it deletes the oldest beyond
// RunsKeep, never a running or queued one, with their output. Commits hold the count
// bounds themselves (commit.go); Trim applies the age limit and a bound
// lowered since the data was written. It deletes in transactions of
// trimChunk keys, between which commits go on. The maintenance goroutine
// calls it at Open and periodically.
func (s *Store) Trim() error {
	if err := s.enter(); err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	defer s.mu.RUnlock()
	hist, err := s.trimHistory()
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	runs, err := s.trimAllRuns()
	if err != nil {
		return fmt.Errorf("trim runs: %w", err)
	}
	if hist > 0 || runs > 0 {
		s.log.Debug("store retention", "versions", hist, "runs", runs)
	}
	return nil
}

// histName is one variable's stored versions as Trim's scan saw them.
type histName struct {
	name string
	r    seqRange
}

// trimHistory deletes the versions beyond retention and returns how many.
func (s *Store) trimHistory() (int, error) {
	var names []histName
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixHistory})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			name, seq, ok := parseHistoryKey(it.Item().Key())
			if !ok {
				return fmt.Errorf("bad history key %q", it.Item().Key())
			}
			if n := len(names); n > 0 && names[n-1].name == string(name) {
				names[n-1].r.last = seq
				continue
			}
			names = append(names, histName{name: string(name), r: seqRange{first: seq, last: seq}})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	cutoff := whenlua.AgeCutoff(s.opts.Now(), s.opts.HistoryMaxAge)
	deleted := 0
	for _, h := range names {
		cut := whenlua.KeepFrom(h.r.first, h.r.last, s.opts.HistoryKeep) // versions first..cut-1 go
		if !cutoff.IsZero() {
			if cut, err = s.ageCut(h, cut, cutoff); err != nil {
				return deleted, err
			}
		}
		for cut > h.r.first {
			end := min(cut, h.r.first+trimChunk)
			if err := s.deleteVersions(h.name, h.r.first, end); err != nil {
				return deleted, err
			}
			deleted += int(end - h.r.first)
			h.r.first = end
		}
	}
	return deleted, nil
}

// ageCut moves cut past the versions from cut on that are older than
// cutoff, never past the newest version h.r.last.
func (s *Store) ageCut(h histName, cut uint64, cutoff time.Time) (uint64, error) {
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := historyPrefix(h.name)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(historyKey(h.name, cut)); it.Valid(); it.Next() {
			_, seq, _ := parseHistoryKey(it.Item().Key())
			if seq >= h.r.last {
				return nil
			}
			var old bool
			if err := s.faults.value(it.Item(), func(b []byte) error {
				t, ok := versionTime(b)
				if !ok {
					return fmt.Errorf("bad version %q", it.Item().Key())
				}
				old = t.Before(cutoff)
				return nil
			}); err != nil {
				return err
			}
			if !old {
				return nil // by sequence, not time: a later version may be older after a clock step, and stays
			}
			cut = seq + 1
		}
		return nil
	})
	return cut, err
}

// deleteVersions deletes name's versions from..to-1 in one transaction and
// moves the bookkeeping of commits past them.
func (s *Store) deleteVersions(name string, from, to uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for seq := from; seq < to; seq++ {
		if err := txn.Delete(historyKey(name, seq)); err != nil {
			return err
		}
	}
	if err := s.commitTxn(txn); err != nil {
		return err
	}
	if r, ok := s.seqs[name]; ok && r.first < to {
		r.first = to
		s.seqs[name] = r
	}
	return nil
}

// trimAllRuns deletes the oldest finished run records beyond RunsKeep, a
// transaction at a time, and returns how many.
func (s *Store) trimAllRuns() (int, error) {
	deleted := 0
	for {
		n, err := s.trimRunsOnce()
		deleted += n
		if err != nil || n == 0 {
			return deleted, err
		}
	}
}

func (s *Store) trimRunsOnce() (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.failed != nil {
		return 0, s.failed
	}
	excess := s.runs.n - s.opts.RunsKeep
	if excess <= 0 {
		return 0, nil
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	w := &writer{s: s, txn: txn, runs: s.runs}
	if err := w.trimRuns(min(excess, trimChunk/2), trimChunk); err != nil {
		return 0, err
	}
	if err := s.commitTxn(txn); err != nil {
		return 0, err
	}
	n := s.runs.n - w.runs.n
	s.runs = w.runs
	return n, nil
}
