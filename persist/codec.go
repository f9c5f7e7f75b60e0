package persist

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/whenlua/whenlua"
)

// Encoding format bytes, the first byte of a stored version or job state,
// so that a later layout can be told from this one.
const (
	formatVersion  = 3 // 2 had no set mark, 1 kept the time in the key (migrate.go)
	formatJobState = 1
	formatEval     = 1
)

// formatVersionNoMark is the version layout without a set mark, still read.
const formatVersionNoMark = 2

// Set mark flags.
const (
	markQueued  = 1 << 0
	markWhisper = 1 << 1
)

// Job state flags.
const (
	flagResult    = 1 << 0
	flagEvaluated = 1 << 1
	flagSnapshot  = 1 << 2 // Snapshot is a non-nil map
	flagPending   = 1 << 3 // PendingSince follows the snapshot
	flagSuccess   = 1 << 4 // LastSuccess follows
	flagSilent    = 1 << 5 // SilentSince follows
)

var errShort = errors.New("truncated")

// encodeVersion is a version's stored value: format, time (be unix
// nanoseconds), origin, set mark (set and rounds as uvarints, a flag
// byte), value. It also returns the value's own encoding, which is the
// tail of ver (the current value v/<name> stores the same bytes).
func encodeVersion(t time.Time, origin string, m whenlua.SetMark, v whenlua.Value) (ver, val []byte) {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(origin)+2*binary.MaxVarintLen64+1+1+len(v.S)+8)
	b = append(b, formatVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	b = appendString(b, origin)
	b = binary.AppendUvarint(b, uint64(m.Set))
	b = binary.AppendUvarint(b, uint64(m.Rounds))
	var flags byte
	if m.Queued {
		flags |= markQueued
	}
	if m.Whisper {
		flags |= markWhisper
	}
	b = append(b, flags)
	n := len(b)
	b = v.AppendBinary(b)
	return b, b[n:]
}

// decodeVersion reads a version of this layout or of the one without a
// set mark (whose mark stays zero: unknown).
func decodeVersion(b []byte) (whenlua.Version, error) {
	if len(b) < 9 || b[0] != formatVersion && b[0] != formatVersionNoMark {
		return whenlua.Version{}, errors.New("decode version: unknown format")
	}
	t := time.Unix(0, int64(binary.BigEndian.Uint64(b[1:9])))
	origin, rest, err := readString(b[9:])
	if err != nil {
		return whenlua.Version{}, fmt.Errorf("decode version: %w", err)
	}
	var m whenlua.SetMark
	if b[0] == formatVersion {
		set, k := binary.Uvarint(rest)
		if k <= 0 || set > math.MaxInt32 {
			return whenlua.Version{}, fmt.Errorf("decode version: %w", errShort)
		}
		rest = rest[k:]
		rounds, k := binary.Uvarint(rest)
		if k <= 0 || rounds > math.MaxInt32 || len(rest) < k+1 {
			return whenlua.Version{}, fmt.Errorf("decode version: %w", errShort)
		}
		flags := rest[k]
		rest = rest[k+1:]
		m = whenlua.SetMark{Set: int(set), Rounds: int(rounds), Queued: flags&markQueued != 0, Whisper: flags&markWhisper != 0}
	}
	v, err := whenlua.DecodeValue(rest)
	return whenlua.Version{Value: v, Time: t, Origin: origin, Mark: m}, err
}

// versionTime is the time of an encoded version, for retention by age.
func versionTime(b []byte) (time.Time, bool) {
	if len(b) < 9 || b[0] != formatVersion && b[0] != formatVersionNoMark {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[1:9]))), true
}

// encodeJobState is format, flags, condition, then the snapshot's entries
// sorted by name, each a name and a length-prefixed value, then, with
// their flags, PendingSince, LastSuccess and SilentSince (each be unix
// nanoseconds).
func encodeJobState(st *whenlua.JobState) []byte {
	var flags byte
	if st.Result {
		flags |= flagResult
	}
	if st.Evaluated {
		flags |= flagEvaluated
	}
	if st.Snapshot != nil {
		flags |= flagSnapshot
	}
	if !st.PendingSince.IsZero() {
		flags |= flagPending
	}
	if !st.LastSuccess.IsZero() {
		flags |= flagSuccess
	}
	if !st.SilentSince.IsZero() {
		flags |= flagSilent
	}
	b := make([]byte, 0, 16+len(st.Cond)+32*len(st.Snapshot))
	b = append(b, formatJobState, flags)
	b = appendString(b, st.Cond)
	b = binary.AppendUvarint(b, uint64(len(st.Snapshot)))
	names := make([]string, 0, len(st.Snapshot))
	for n := range st.Snapshot {
		names = append(names, n)
	}
	slices.Sort(names)
	var vb []byte
	for _, n := range names {
		b = appendString(b, n)
		vb = st.Snapshot[n].AppendBinary(vb[:0])
		b = binary.AppendUvarint(b, uint64(len(vb)))
		b = append(b, vb...)
	}
	for _, t := range []time.Time{st.PendingSince, st.LastSuccess, st.SilentSince} {
		if !t.IsZero() {
			b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
		}
	}
	return b
}

func decodeJobState(b []byte) (whenlua.JobState, error) {
	var st whenlua.JobState
	if len(b) < 2 || b[0] != formatJobState {
		return st, errors.New("decode job state: unknown format")
	}
	flags := b[1]
	st.Result = flags&flagResult != 0
	st.Evaluated = flags&flagEvaluated != 0
	cond, rest, err := readString(b[2:])
	if err != nil {
		return st, fmt.Errorf("decode job state: %w", err)
	}
	st.Cond = cond
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)) {
		return st, fmt.Errorf("decode job state: %w", errShort)
	}
	rest = rest[k:]
	if flags&flagSnapshot != 0 {
		st.Snapshot = make(map[string]whenlua.Value, n)
	}
	for range n {
		var name, raw string
		if name, rest, err = readString(rest); err == nil {
			raw, rest, err = readString(rest)
		}
		if err != nil {
			return st, fmt.Errorf("decode job state: %w", err)
		}
		v, err := whenlua.DecodeValue([]byte(raw))
		if err != nil {
			return st, fmt.Errorf("decode job state %s: %w", name, err)
		}
		if st.Snapshot == nil {
			st.Snapshot = make(map[string]whenlua.Value, n)
		}
		st.Snapshot[name] = v
	}
	for _, tf := range []struct {
		flag byte
		t    *time.Time
	}{{flagPending, &st.PendingSince}, {flagSuccess, &st.LastSuccess}, {flagSilent, &st.SilentSince}} {
		if flags&tf.flag == 0 {
			continue
		}
		if len(rest) < 8 {
			return st, fmt.Errorf("decode job state: %w", errShort)
		}
		*tf.t = time.Unix(0, int64(binary.BigEndian.Uint64(rest)))
		rest = rest[8:]
	}
	if len(rest) != 0 {
		return st, errors.New("decode job state: trailing bytes")
	}
	return st, nil
}

// encodeEval is an evaluation kept for `whenlua why`: its sequence (be
// uint64, so that Open finds each job's newest without decoding more),
// format, flags, time, trigger (kind, origin, names, time), outcome,
// serial, reason, scheduled time, then the values read, each a name, a
// length-prefixed value and, with a previous snapshot, the previous value.
// The job is the key's. Times are be unix nanoseconds, 0 for none.
func encodeEval(e whenlua.Evaluation) []byte {
	var flags byte
	for i, f := range []bool{e.Cond, e.Result, e.PrevResult, e.Reloaded, e.CatchUp} {
		if f {
			flags |= 1 << i
		}
	}
	b := make([]byte, 0, 96+len(e.Trigger.Origin)+len(e.Reason)+32*len(e.Values))
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = append(b, formatEval, flags)
	b = appendTime(b, e.Time)
	b = appendString(b, e.Trigger.Kind)
	b = appendString(b, e.Trigger.Origin)
	b = binary.AppendUvarint(b, uint64(len(e.Trigger.Names)))
	for _, n := range e.Trigger.Names {
		b = appendString(b, n)
	}
	b = appendTime(b, e.Trigger.Time)
	b = appendString(b, string(e.Outcome))
	b = binary.AppendUvarint(b, e.Serial)
	b = appendString(b, e.Reason)
	b = appendTime(b, e.Scheduled)
	b = binary.AppendUvarint(b, uint64(len(e.Values)))
	var vb []byte
	for _, v := range e.Values {
		b = appendString(b, v.Name)
		vb = v.Value.AppendBinary(vb[:0])
		b = appendString(b, string(vb))
		if v.Prev == nil {
			b = append(b, 0)
			continue
		}
		vb = v.Prev.AppendBinary(vb[:0])
		b = append(b, 1)
		b = appendString(b, string(vb))
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

// evalReader reads the fields of an encoded evaluation in order; the first
// error sticks.
type evalReader struct {
	b   []byte
	err error
}

func (r *evalReader) str() string {
	if r.err != nil {
		return ""
	}
	var s string
	s, r.b, r.err = readString(r.b)
	return s
}

func (r *evalReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[k:]
	return n
}

func (r *evalReader) time() time.Time {
	if r.err != nil || len(r.b) < 8 {
		r.err = cmp.Or(r.err, errShort)
		return time.Time{}
	}
	n := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (r *evalReader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = cmp.Or(r.err, errShort)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *evalReader) value() whenlua.Value {
	raw := r.str()
	if r.err != nil {
		return whenlua.Nil
	}
	v, err := whenlua.DecodeValue([]byte(raw))
	r.err = err
	return v
}

// decodeEval decodes an evaluation of job.
func decodeEval(job string, b []byte) (whenlua.Evaluation, error) {
	e := whenlua.Evaluation{Job: job}
	if len(b) < 10 || b[8] != formatEval {
		return e, errors.New("decode evaluation: unknown format")
	}
	e.Seq = binary.BigEndian.Uint64(b)
	flags := b[9]
	e.Cond, e.Result, e.PrevResult, e.Reloaded, e.CatchUp = flags&1 != 0, flags&2 != 0, flags&4 != 0, flags&8 != 0, flags&16 != 0
	r := &evalReader{b: b[10:]}
	e.Time = r.time()
	e.Trigger.Kind = r.str()
	e.Trigger.Origin = r.str()
	if n := r.uvarint(); n > 0 && n <= uint64(len(r.b)) {
		e.Trigger.Names = make([]string, n)
		for i := range e.Trigger.Names {
			e.Trigger.Names[i] = r.str()
		}
	} else if n > 0 {
		r.err = errShort
	}
	e.Trigger.Time = r.time()
	e.Outcome = whenlua.Outcome(r.str())
	e.Serial = r.uvarint()
	e.Reason = r.str()
	e.Scheduled = r.time()
	if n := r.uvarint(); n > 0 && n <= uint64(len(r.b)) {
		e.Values = make([]whenlua.ReadValue, n)
		for i := range e.Values {
			v := &e.Values[i]
			v.Name = r.str()
			v.Value = r.value()
			if r.byte() == 1 {
				p := r.value()
				v.Prev = &p
			}
		}
	} else if n > 0 {
		r.err = errShort
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return e, fmt.Errorf("decode evaluation %d of %s: %w", e.Seq, job, r.err)
	}
	return e, nil
}

// encodeRun is the run record as JSON, without its output (stored apart).
func encodeRun(r whenlua.Run) ([]byte, error) {
	r.Output = nil
	return json.Marshal(r)
}

func decodeRun(b []byte) (whenlua.Run, error) {
	var r whenlua.Run
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode run: %w", err)
	}
	return r, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (s string, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, errShort
	}
	end := k + int(n)
	return string(b[k:end]), b[end:], nil
}
