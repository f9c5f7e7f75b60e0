package persist

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

// view runs fn in a read transaction under the shared lock.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.db.View(fn)
}

// Vars returns every set variable.
func (s *Store) Vars() (map[string]whenlua.Value, error) {
	vars, err := scanNamed(s, prefixVar, "variable", whenlua.DecodeValue)
	if err != nil {
		return nil, fmt.Errorf("read variables: %w", err)
	}
	return vars, nil
}

// Evaluations returns the kept evaluations of job, newest first.
func (s *Store) Evaluations(job string) ([]whenlua.Evaluation, error) {
	var out []whenlua.Evaluation
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: evalPrefix(job), PrefetchValues: true, PrefetchSize: whenlua.EvalKeep})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			err := s.faults.value(it.Item(), func(b []byte) error {
				e, err := decodeEval(job, b)
				out = append(out, e)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read evaluations of %s: %w", job, err)
	}
	slices.SortFunc(out, func(a, b whenlua.Evaluation) int { return cmp.Compare(b.Seq, a.Seq) })
	return out, nil
}

// EvalSeqs returns the sequence of each job's newest kept evaluation, from
// the head of each stored one.
func (s *Store) EvalSeqs() (map[string]uint64, error) {
	seqs := map[string]uint64{}
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixEval, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) < len(prefixEval)+3 {
				continue
			}
			job := string(k[len(prefixEval) : len(k)-2])
			err := s.faults.value(it.Item(), func(b []byte) error {
				if len(b) < 8 {
					return fmt.Errorf("evaluation of %s: %w", job, errShort)
				}
				seqs[job] = max(seqs[job], binary.BigEndian.Uint64(b))
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read evaluation sequences: %w", err)
	}
	return seqs, nil
}

// History returns the kept versions of name, newest first, at most n of
// them (n <= 0: all). A name without versions gives an empty list.
func (s *Store) History(name string, n int) ([]whenlua.Version, error) {
	out, err := scanNewest(s, historyPrefix(name), decodeVersionOf, nil, n)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", name, err)
	}
	s.afterRead(len(out))
	return out, nil
}

// JobStates returns every stored job state, by job name.
func (s *Store) JobStates() (map[string]whenlua.JobState, error) {
	states, err := scanNamed(s, prefixState, "job", decodeJobState)
	if err != nil {
		return nil, fmt.Errorf("read job states: %w", err)
	}
	return states, nil
}

// Serial returns the stored JOBSERIAL counter, 0 when never written.
func (s *Store) Serial() (uint64, error) {
	var serial uint64
	err := s.view(func(txn *badger.Txn) error {
		return s.get(txn, keySerial, nil, func(b []byte) error {
			if len(b) != 8 {
				return fmt.Errorf("bad serial of %d bytes", len(b))
			}
			serial = binary.BigEndian.Uint64(b)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("read serial: %w", err)
	}
	return serial, nil
}

// Run returns one run record with its stored output. An unknown serial
// gives an error wrapping whenlua.ErrNotFound.
func (s *Store) Run(serial uint64) (whenlua.Run, error) {
	var r whenlua.Run
	err := s.view(func(txn *badger.Txn) error {
		if err := s.get(txn, runKey(serial), whenlua.ErrNotFound, func(b []byte) error {
			var err error
			r, err = decodeRun(b)
			return err
		}); err != nil {
			return err
		}
		return s.get(txn, outputKey(serial), nil, func(b []byte) error {
			r.Output = append([]byte(nil), b...)
			return nil
		})
	})
	if err != nil {
		return whenlua.Run{}, fmt.Errorf("run %d: %w", serial, err)
	}
	return r, nil
}

// Runs returns run records without their output, newest serial first: those
// of job, or of every job when job is "", at most n (n <= 0: all).
func (s *Store) Runs(job string, n int) ([]whenlua.Run, error) {
	runs, err := scanNewest(s, prefixRun, withoutCommit(decodeRun), func(r *whenlua.Run) bool { return job == "" || r.Job == job }, n)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	s.afterRead(len(runs))
	return runs, nil
}

// RunningRuns returns the runs whose state is whenlua.RunRunning or RunQueued, newest
// serial first. At start the daemon marks them lost.
func (s *Store) RunningRuns() ([]whenlua.Run, error) {
	runs, err := scanNewest(s, prefixRun, withoutCommit(decodeRun), func(r *whenlua.Run) bool {
		return r.State == whenlua.RunRunning || r.State == whenlua.RunQueued
	}, 0)
	if err != nil {
		return nil, fmt.Errorf("list running runs: %w", err)
	}
	return runs, nil
}

// get hands fn the value stored at key; a missing key gives missing
// (nil: nothing is done and no error).
func (s *Store) get(txn *badger.Txn, key []byte, missing error, fn func(b []byte) error) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return missing
	}
	if err != nil {
		return err
	}
	return s.faults.value(item, fn)
}

// scanNamed decodes every value under prefix into a map by the rest of
// its key; a value that does not decode is an error naming what it is.
func scanNamed[T any](s *Store, prefix []byte, what string, decode func([]byte) (T, error)) (map[string]T, error) {
	out := make(map[string]T)
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 100, Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			name := string(item.Key()[len(prefix):])
			err := s.faults.value(item, func(b []byte) error {
				v, err := decode(b)
				if err != nil {
					return fmt.Errorf("%s %s: %w", what, name, err)
				}
				out[name] = v
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// scanNewest walks the records under prefix, whose keys end in an 8-byte
// big-endian number, from the highest number down, keeping those keep
// accepts (nil: all), at most n (n <= 0: all). decode is given each
// record's value and badger's commit timestamp of it.
func scanNewest[T any](s *Store, prefix []byte, decode func(b []byte, commit uint64) (T, error), keep func(*T) bool, n int) ([]T, error) {
	var out []T
	err := s.view(func(txn *badger.Txn) error {
		opt := badger.IteratorOptions{Reverse: true, Prefix: prefix, PrefetchValues: true, PrefetchSize: 100}
		if keep == nil && n > 0 && n < opt.PrefetchSize {
			opt.PrefetchSize = n // no more than n are read
		}
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Seek(seekLast(prefix, 8)); it.Valid(); it.Next() {
			var v T
			err := s.faults.value(it.Item(), func(b []byte) error {
				var err error
				v, err = decode(b, it.Item().Version())
				return err
			})
			if err != nil {
				return err
			}
			if keep != nil && !keep(&v) {
				continue
			}
			out = append(out, v)
			if n > 0 && len(out) >= n {
				break
			}
		}
		return nil
	})
	return out, err
}

// withoutCommit adapts a decoder that has no use for the commit timestamp.
func withoutCommit[T any](decode func([]byte) (T, error)) func([]byte, uint64) (T, error) {
	return func(b []byte, _ uint64) (T, error) { return decode(b) }
}

// decodeVersionOf decodes a version and gives it the commit timestamp of
// the transaction that stored it (whenlua.Version.Commit).
func decodeVersionOf(b []byte, commit uint64) (whenlua.Version, error) {
	v, err := decodeVersion(b)
	v.Commit = commit
	return v, err
}

// Memory after a large read. The Go runtime returns freed memory to the
// system only gradually, and an idle daemon collects garbage only every
// two minutes: a listing of 100,000 versions would keep the daemon's
// resident size up for minutes. So a read of at least largeRead records
// has all free memory returned releaseDelay later, once the caller has
// sent the result and dropped it.
const (
	largeRead    = 10000
	releaseDelay = 2 * time.Second
)

// afterRead schedules the release after a read of n records.
func (s *Store) afterRead(n int) {
	if n < largeRead {
		return
	}
	s.releaseMu.Lock()
	defer s.releaseMu.Unlock()
	if s.release == nil {
		s.release = time.AfterFunc(releaseDelay, debug.FreeOSMemory)
		return
	}
	s.release.Reset(releaseDelay)
}
