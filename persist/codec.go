package persist

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/whenlua/whenlua"
)

// Encoding format bytes, the first byte of a stored version or job state,
// so that a later layout can be told from this one.
const (
	formatVersion  = 2 // 1 kept the time in the key (migrate.go)
	formatJobState = 1
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
// nanoseconds), origin, value. It also returns the value's own encoding,
// which is the tail of ver (the current value v/<name> stores the same
// bytes).
func encodeVersion(t time.Time, origin string, v whenlua.Value) (ver, val []byte) {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(origin)+1+len(v.S)+8)
	b = append(b, formatVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	b = appendString(b, origin)
	n := len(b)
	b = v.AppendBinary(b)
	return b, b[n:]
}

func decodeVersion(b []byte) (whenlua.Version, error) {
	if len(b) < 9 || b[0] != formatVersion {
		return whenlua.Version{}, errors.New("decode version: unknown format")
	}
	t := time.Unix(0, int64(binary.BigEndian.Uint64(b[1:9])))
	origin, rest, err := readString(b[9:])
	if err != nil {
		return whenlua.Version{}, fmt.Errorf("decode version: %w", err)
	}
	v, err := whenlua.DecodeValue(rest)
	return whenlua.Version{Value: v, Time: t, Origin: origin}, err
}

// versionTime is the time of an encoded version, for retention by age.
func versionTime(b []byte) (time.Time, bool) {
	if len(b) < 9 || b[0] != formatVersion {
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
