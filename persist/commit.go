package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

// VarChange is one new version of a variable.
type VarChange struct {
	Name   string
	Value  whenlua.Value // whenlua.Nil unsets the variable
	Origin string        // recorded with the version (whenlua.OriginCLI, ...)
	Time   time.Time     // the version's time; zero means now
}

// Batch is everything one Commit writes, atomically.
type Batch struct {
	// Vars are applied in order: each becomes a version h/<name>... and
	// sets v/<name> (or deletes it when the value is Nil; the unset is
	// still recorded as a version whose value is Nil). Several changes of
	// one name in a batch are all kept as versions, in order, and the last
	// one is the current value.
	Vars []VarChange
	// JobStates replace s/<job>; a nil pointer deletes the job's state.
	JobStates map[string]*whenlua.JobState
	// Runs replace r/<serial>. A run's Output is stored under its own key
	// (o/<serial>) so that listings stay light; an empty Output deletes it.
	Runs []whenlua.Run
	// Serial, when nonzero, becomes the stored JOBSERIAL counter.
	Serial uint64
}

// maxJobNameLen bounds a job name so that its key stays far below badger's
// key size limit.
const maxJobNameLen = 4096

// Commit writes b as one badger transaction: all of it or, when it returns
// an error, nothing. When it returns nil the batch is on disk: its record in
// the commit log is fdatasynced before the transaction is committed.
// Invalid names or values give an error wrapping whenlua.ErrInvalid; a batch
// badger cannot take in one transaction gives one wrapping ErrTooBig: a
// transaction holds about 13,000 keys (a variable or a run is two, a job
// state one) and 1.2 MiB of values under 32 bytes with their keys; larger
// values live in the value log and count as a 12-byte pointer.
// Concurrent Commits are allowed; those waiting at the same time share one
// log sync, and their transactions are committed in log order.
func (s *Store) Commit(b *Batch) error {
	if err := validateBatch(b); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := s.enter(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	defer s.mu.RUnlock()

	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	bufp := recPool.Get().(*[]byte)
	rec := append((*bufp)[:0], make([]byte, recHeaderSize)...)
	defer func() {
		if cap(rec) <= maxPooledRec {
			*bufp = rec
			recPool.Put(bufp)
		}
	}()
	entries := 0
	set := func(k, v []byte) error {
		entries++
		if err := txn.Set(k, v); err != nil {
			return err
		}
		rec = appendOp(rec, opSet, k, v)
		return nil
	}
	del := func(k []byte) error {
		entries++
		if err := txn.Delete(k); err != nil {
			return err
		}
		rec = appendOp(rec, opDelete, k, nil)
		return nil
	}
	err := s.fill(b, set, del)
	if err == nil && len(rec)-recHeaderSize > maxRecordPayload {
		err = fmt.Errorf("%w: record of %d bytes", badger.ErrTxnTooBig, len(rec))
	}
	if err == nil {
		err = s.checkSpace(len(rec))
	}
	if err == nil {
		err = s.submit(&pending{rec: rec, txn: txn, done: make(chan struct{})})
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, badger.ErrTxnTooBig):
		return fmt.Errorf("commit: %w (%d variables, %d job states, %d runs; failed at entry %d): %w",
			ErrTooBig, len(b.Vars), len(b.JobStates), len(b.Runs), entries, err)
	}
	return fmt.Errorf("commit: %w", err)
}

// fill turns the batch into key writes.
func (s *Store) fill(b *Batch, set func(k, v []byte) error, del func(k []byte) error) error {
	now := time.Now()
	for _, c := range b.Vars {
		t := c.Time
		if t.IsZero() {
			t = now
		}
		ver, val := encodeVersion(c.Origin, c.Value)
		if err := set(historyKey(c.Name, t, s.seq.Add(1)), ver); err != nil {
			return err
		}
		var err error
		if c.Value.IsNil() {
			err = del(varKey(c.Name))
		} else {
			err = set(varKey(c.Name), val)
		}
		if err != nil {
			return err
		}
	}
	jobs := make([]string, 0, len(b.JobStates))
	for j := range b.JobStates {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	for _, j := range jobs {
		var err error
		if st := b.JobStates[j]; st == nil {
			err = del(stateKey(j))
		} else {
			err = set(stateKey(j), encodeJobState(st))
		}
		if err != nil {
			return err
		}
	}
	for _, r := range b.Runs {
		enc, err := encodeRun(r)
		if err != nil {
			return fmt.Errorf("run %d: %w", r.Serial, err)
		}
		if err := set(runKey(r.Serial), enc); err != nil {
			return err
		}
		if len(r.Output) > 0 {
			err = set(outputKey(r.Serial), r.Output)
		} else {
			err = del(outputKey(r.Serial))
		}
		if err != nil {
			return err
		}
	}
	if b.Serial != 0 {
		if err := set(keySerial, binary.BigEndian.AppendUint64(nil, b.Serial)); err != nil {
			return err
		}
	}
	return nil
}

// validateBatch checks names, values and serials before anything is written.
func validateBatch(b *Batch) error {
	if b == nil {
		return fmt.Errorf("%w: nil batch", whenlua.ErrInvalid)
	}
	for _, c := range b.Vars {
		if err := whenlua.ValidateName(c.Name); err != nil {
			return err
		}
		if err := whenlua.ValidateValue(c.Name, c.Value); err != nil {
			return err
		}
	}
	for j := range b.JobStates {
		if j == "" || len(j) > maxJobNameLen {
			return fmt.Errorf("%w: job name of %d bytes", whenlua.ErrInvalid, len(j))
		}
	}
	for _, r := range b.Runs {
		if r.Serial == 0 {
			return fmt.Errorf("%w: run of job %q with serial 0", whenlua.ErrInvalid, r.Job)
		}
	}
	return nil
}
