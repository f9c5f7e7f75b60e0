package host

import (
	"sort"

	"github.com/whenlua/whenlua"
)

// A step's batch is split when it holds more than these: a transaction of
// the store holds about 13,000 keys and 1.2 MiB of keys and values under
// 1 KiB (a larger value counts as a pointer), and a step can change
// thousands of job states or start thousands of runs. A variable change or
// a run counts three keys: its own two and what retention deletes with it.
const (
	maxPartKeys  = 2048
	maxPartBytes = 512 << 10
)

// commit stores a step's batch. One that fits is one transaction. A larger
// one is split (splitBatch): its variables and serial go in the first
// transaction, so each set stays atomic; job states and run records fill
// the rest. An error of the first part is the step's: nothing was stored.
// A later part that fails leaves the step in place: its job states are
// written with the next step, and the records of runs that ended are
// retried; the serials of runs whose start record was not stored are
// returned, so that they are not started (a new one is recorded as failed,
// one from the queue goes back to it).
//
// lost are the evaluations of the parts not stored.
func (st *state) commit(b *whenlua.Batch) (notStarted map[uint64]bool, lost []whenlua.Evaluation, err error) {
	carried := st.carry
	st.carry = nil
	parts := splitBatch(b)
	for i, p := range parts {
		err := st.e.store.Commit(p)
		if err == nil {
			continue
		}
		if i == 0 {
			st.carry = carried
			return nil, nil, err
		}
		st.e.log.Error("commit of a step's job states and runs", "err", err, "part", i+1, "of", len(parts))
		notStarted = map[uint64]bool{}
		for _, q := range parts[i:] {
			lost = append(lost, q.Evals...)
			for name := range q.JobStates {
				if st.carry == nil {
					st.carry = map[string]bool{}
				}
				st.carry[name] = true
			}
			for _, r := range q.Runs {
				switch r.State {
				case whenlua.RunRunning:
					notStarted[r.Serial] = true // flush does not start it
				case whenlua.RunQueued:
					// Recorded again when it leaves the queue.
				default:
					st.unrecorded = append(st.unrecorded, r)
				}
			}
		}
		break
	}
	return notStarted, lost, nil
}

// splitBatch returns b itself when it is small enough for one transaction,
// or parts of it that each are: the first holds every variable change and
// the serial.
func splitBatch(b *whenlua.Batch) []*whenlua.Batch {
	keys := 3*len(b.Vars) + len(b.JobStates) + 3*len(b.Runs) + len(b.Evals)
	if keys <= maxPartKeys && batchBytes(b) <= maxPartBytes {
		return []*whenlua.Batch{b}
	}
	first := &whenlua.Batch{Vars: b.Vars, Serial: b.Serial, JobStates: map[string]*whenlua.JobState{}}
	parts := []*whenlua.Batch{first}
	cur, curKeys, curBytes := first, 3*len(b.Vars), 0
	for _, v := range b.Vars {
		curBytes += 2 * entryBytes(len(v.Name), len(v.Value.S))
	}
	add := func(k, n int) {
		if curKeys+k > maxPartKeys || curBytes+n > maxPartBytes && curKeys > 0 {
			cur = &whenlua.Batch{JobStates: map[string]*whenlua.JobState{}}
			parts = append(parts, cur)
			curKeys, curBytes = 0, 0
		}
		curKeys += k
		curBytes += n
	}
	// Runs first: a run's start record must be stored before its process
	// starts, and the states are the part a later step can write again.
	for _, r := range b.Runs {
		add(3, 2*entryBytes(len(r.Job), len(r.Output)))
		cur.Runs = append(cur.Runs, r)
	}
	names := make([]string, 0, len(b.JobStates))
	for name := range b.JobStates {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := b.JobStates[name]
		add(1, entryBytes(len(name), stateBytes(s)))
		cur.JobStates[name] = s
	}
	// A job's evaluations stay in order: a part that fails loses a tail
	// of them (state.keepSeqs).
	for _, e := range b.Evals {
		add(1, entryBytes(len(e.Job), evalBytes(e)))
		cur.Evals = append(cur.Evals, e)
	}
	return parts
}

func batchBytes(b *whenlua.Batch) int {
	n := 0
	for _, v := range b.Vars {
		n += 2 * entryBytes(len(v.Name), len(v.Value.S))
	}
	for name, s := range b.JobStates {
		n += entryBytes(len(name), stateBytes(s))
	}
	for _, r := range b.Runs {
		n += 2 * entryBytes(len(r.Job), len(r.Output))
	}
	for _, e := range b.Evals {
		n += entryBytes(len(e.Job), evalBytes(e))
	}
	return n
}

// evalBytes estimates the encoded size of an evaluation (JSON).
func evalBytes(e whenlua.Evaluation) int {
	n := 256 + len(e.Reason) + len(e.Trigger.Origin)
	for _, name := range e.Trigger.Names {
		n += len(name) + 3
	}
	for _, v := range e.Values {
		n += 2*len(v.Name) + 2*len(v.Value.S) + 96
		if v.Prev != nil {
			n += 2 * len(v.Prev.S)
		}
	}
	return n
}

// entryBytes is what an entry of about that key and value length costs a
// transaction: its key and its value, or the pointer to a value kept in
// the value log.
func entryBytes(key, value int) int {
	if value >= 1<<10 {
		value = 12
	}
	return 32 + key + value
}

// stateBytes estimates the encoded size of a job state.
func stateBytes(s *whenlua.JobState) int {
	if s == nil {
		return 0
	}
	n := len(s.Cond) + 16
	for name, v := range s.Snapshot {
		n += len(name) + len(v.S) + 9
	}
	return n
}
