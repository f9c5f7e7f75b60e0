package persist

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

// Trim applies retention now: per variable it keeps the newest
// HistoryKeep versions younger than HistoryMaxAge, and always the newest
// one; of the run records it deletes the oldest beyond RunsKeep, never a
// running one, with their output. The deletes go through a badger
// WriteBatch: they are not one transaction, and a Commit may run meanwhile
// (Trim deletes only keys it has seen, never a version newer than the
// newest it saw). The deletes are not in the commit log: after a crash, the
// replay of an older record may bring back a trimmed version or run, which
// the next Trim deletes again. The maintenance goroutine calls Trim
// periodically.
func (s *Store) Trim() error {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	if err := s.enter(); err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	defer s.mu.RUnlock()
	s.writeBegin()
	defer s.writeEnd()

	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	hist, err := s.trimHistory(wb, time.Now())
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	runs, err := s.trimRuns(wb)
	if err != nil {
		return fmt.Errorf("trim runs: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	if hist > 0 || runs > 0 {
		s.log.Debug("store retention", "versions", hist, "runs", runs)
	}
	return nil
}

// trimHistory queues the deletes of the versions beyond retention and
// returns how many.
func (s *Store) trimHistory(wb *badger.WriteBatch, now time.Time) (int, error) {
	keep := s.opts.HistoryKeep
	var cutoff time.Time
	if s.opts.HistoryMaxAge > 0 {
		cutoff = now.Add(-s.opts.HistoryMaxAge)
	}
	deleted := 0
	// keys holds the version keys of the name being scanned, oldest first,
	// with their times.
	var keys [][]byte
	var times []time.Time
	var name []byte
	flush := func() error {
		// The last key is the newest version: never deleted.
		for i, k := range keys[:max(len(keys)-1, 0)] {
			t := times[i]
			beyondCount := len(keys)-i > keep
			tooOld := !cutoff.IsZero() && t.Before(cutoff)
			if !beyondCount && !tooOld {
				break // versions only get newer from here
			}
			if err := wb.Delete(k); err != nil {
				return err
			}
			deleted++
		}
		keys, times = keys[:0], times[:0]
		return nil
	}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixHistory})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			sep, t, ok := parseHistoryKey(k)
			if !ok {
				s.log.Warn("store retention: bad history key", "key", fmt.Sprintf("%q", k))
				continue
			}
			if !bytes.Equal(k[:sep], name) {
				if err := flush(); err != nil {
					return err
				}
				name = append(name[:0], k[:sep]...)
			}
			keys, times = append(keys, k), append(times, t)
		}
		return flush()
	})
	return deleted, err
}

// trimRuns queues the deletes of the oldest run records beyond RunsKeep,
// skipping running ones, and returns how many.
func (s *Store) trimRuns(wb *badger.WriteBatch) (int, error) {
	deleted := 0
	err := s.db.View(func(txn *badger.Txn) error {
		total := 0
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixRun})
		for it.Rewind(); it.Valid(); it.Next() {
			total++
		}
		it.Close()
		excess := total - s.opts.RunsKeep
		if excess <= 0 {
			return nil
		}
		it = txn.NewIterator(badger.IteratorOptions{Prefix: prefixRun, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid() && deleted < excess; it.Next() {
			item := it.Item()
			var r whenlua.Run
			err := item.Value(func(b []byte) error {
				var err error
				r, err = decodeRun(b)
				return err
			})
			if err != nil {
				return err
			}
			if r.State == whenlua.RunRunning || r.State == whenlua.RunQueued {
				continue
			}
			k := item.KeyCopy(nil)
			if err := wb.Delete(k); err != nil {
				return err
			}
			if err := wb.Delete(outputKey(binary.BigEndian.Uint64(k[len(prefixRun):]))); err != nil {
				return err
			}
			deleted++
		}
		return nil
	})
	return deleted, err
}
