package whenlua

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Store is the durable state the engine keeps: variables with their
// version history, when-job states, run records and the JOBSERIAL counter.
// The engine calls it from its own goroutine; an implementation must also
// allow reads from other goroutines. persist.Store (badger) implements it.
type Store interface {
	// Commit writes b atomically: when it returns nil all of b is durable
	// (on disk, synced), and when it returns an error nothing of b is
	// stored, unless the error wraps ErrOutcomeUnknown. Retention may
	// delete old versions and runs in the same commit.
	Commit(b *Batch) error
	// Vars returns every set variable.
	Vars() (map[string]Value, error)
	// History returns the kept versions of name, newest first, at most n
	// (n <= 0: all). A name without versions gives an empty list.
	History(name string, n int) ([]Version, error)
	// JobStates returns every stored job state, by job name.
	JobStates() (map[string]JobState, error)
	// Evaluations returns the kept evaluations of job (at most EvalKeep),
	// newest first; none for a job never evaluated.
	Evaluations(job string) ([]Evaluation, error)
	// EvalSeqs returns, by job, the Seq of its newest kept evaluation.
	EvalSeqs() (map[string]uint64, error)
	// DropEvaluations deletes the kept evaluations of jobs (those that
	// left long ago), whole rings, and nothing else.
	DropEvaluations(jobs []string) error
	// Serial returns the stored JOBSERIAL counter, 0 when never written.
	Serial() (uint64, error)
	// Run returns one run record with its output; an unknown serial gives
	// an error wrapping ErrNotFound.
	Run(serial uint64) (Run, error)
	// Runs returns run records without output, newest first: those of job
	// (every job when ""), at most n (n <= 0: all).
	Runs(job string, n int) ([]Run, error)
	// RunningRuns returns the runs stored in state RunRunning, newest first.
	RunningRuns() ([]Run, error)
	// Trim applies the retention policy to everything stored now.
	Trim() error
	// Close releases the store; every later call fails with ErrStoreClosed.
	Close() error
}

// ErrStoreClosed is wrapped by every Store method called after Close.
var ErrStoreClosed = errors.New("store closed")

// ErrStoreTooBig is wrapped by Commit when a batch cannot be written as one
// transaction; nothing of it was stored.
var ErrStoreTooBig = errors.New("batch too big for one transaction")

// ErrDiskFull is wrapped by Commit when the disk lacks the room to take the
// batch safely; nothing of it was stored.
var ErrDiskFull = errors.New("disk full")

// ErrOutcomeUnknown is wrapped by Commit when the store failed and could
// not tell whether the batch was stored (a cluster store that lost etcd's
// reply and then etcd): all of it may be, or none.
var ErrOutcomeUnknown = errors.New("commit outcome unknown")

// VarChange is one new version of a variable.
type VarChange struct {
	Name   string
	Value  Value     // Nil unsets the variable
	Origin string    // recorded with the version (OriginCLI, ...)
	Time   time.Time // the version's time, kept as data; zero means now
	Mark   SetMark   // the set's place in its commit, kept for a replay
}

// Batch is everything one Store.Commit writes, atomically.
type Batch struct {
	// Vars are applied in order: each becomes a new version and sets the
	// current value (or unsets it when the value is Nil; the unset is still
	// recorded as a version). Several changes of one name in a batch are
	// all kept as versions, in order, and the last is the current value.
	Vars []VarChange
	// JobStates replace the stored states; a nil pointer deletes one.
	JobStates map[string]*JobState
	// Runs replace the stored run records of their serials; a run's Output
	// is stored with it (an empty Output deletes a stored one).
	Runs []Run
	// Serial, when nonzero, becomes the stored JOBSERIAL counter.
	Serial uint64
	// Evals are evaluations to keep for `whenlua why`. Each job's Seq
	// counts up by one from its newest stored one; each replaces the one
	// EvalKeep before it, so each job keeps its EvalKeep newest.
	Evals []Evaluation
}

// The retention a store applies to options left at 0.
const (
	DefaultHistoryKeep = 1000
	DefaultRunsKeep    = 10000
)

// KeepFrom is the count rule of retention: of the versions first..last of
// a variable, the keep newest stay; it returns the first that stays.
func KeepFrom(first, last uint64, keep int) uint64 {
	if k := uint64(keep); last+1-first > k {
		return last - k + 1
	}
	return first
}

// AgeCutoff is the age rule of retention: versions older than the time it
// returns go (the newest of a variable always stays). It is zero, no age
// limit, when maxAge is 0 or less.
func AgeCutoff(now time.Time, maxAge time.Duration) time.Time {
	if maxAge <= 0 {
		return time.Time{}
	}
	return now.Add(-maxAge)
}

// MaxStoredJobName bounds a job name a store accepts, so that its keys stay
// far below the key size limits of badger and etcd.
const MaxStoredJobName = 4096

// Validate checks the invariants a store keeps whoever commits b: valid
// names and values, job names of 1 to MaxStoredJobName bytes, evaluations
// with a job name without "/" and a nonzero Seq, and runs with a nonzero
// serial. Both stores call it before anything is written.
func (b *Batch) Validate() error {
	if b == nil {
		return fmt.Errorf("%w: nil batch", ErrInvalid)
	}
	for _, c := range b.Vars {
		if err := ValidateName(c.Name); err != nil {
			return err
		}
		if err := ValidateValue(c.Name, c.Value); err != nil {
			return err
		}
	}
	for j := range b.JobStates {
		if j == "" || len(j) > MaxStoredJobName {
			return fmt.Errorf("%w: job name of %d bytes", ErrInvalid, len(j))
		}
	}
	for _, e := range b.Evals {
		if e.Job == "" || len(e.Job) > MaxStoredJobName || strings.Contains(e.Job, "/") || e.Seq == 0 {
			return fmt.Errorf("%w: evaluation of job %q with sequence %d", ErrInvalid, e.Job, e.Seq)
		}
	}
	for _, r := range b.Runs {
		if r.Serial == 0 {
			return fmt.Errorf("%w: run of job %q with serial 0", ErrInvalid, r.Job)
		}
	}
	return nil
}
