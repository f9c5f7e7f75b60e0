package cluster

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/whenlua/whenlua"
)

// Key layout, under root = /whenlua/<cluster>/ (numbers are 16 lowercase
// hex digits, so that keys sort as the numbers do):
//
//	v/<name>              current value (whenlua.Value.AppendBinary); absent when unset
//	h/<name>/<seq>        one version of name (JSON: time, origin, value)
//	s/<job>               a when-job's state (JSON)
//	r/<serial>            a run record without its output (JSON)
//	o/<serial>            that run's stored output, at most maxOutput bytes
//	m/serial              the JOBSERIAL counter (decimal)
//	e/<job>/<slot>        one of a job's EvalKeep newest evaluations (JSON); seq takes slot seq mod EvalKeep
//	m/head                "<step> <token>" of the last commit: every write rewrites it
//	j/<step>/<part>       a journal part: key operations of a step too big for one transaction
//	j/<step>/commit       the number of parts: the step is committed
//
// A version's sequence counts the versions of its variable from 1, as in
// persist; etcd's own revisions are global and compacted, so history keeps
// keys of its own.
type keys struct {
	root                           string
	vars, hist, states, runs, outs string
	evals                          string
	serial, head, journal          string
}

func newKeys(cluster string) keys {
	r := "/whenlua/" + cluster + "/"
	return keys{
		root:    r,
		vars:    r + "v/",
		hist:    r + "h/",
		states:  r + "s/",
		runs:    r + "r/",
		outs:    r + "o/",
		serial:  r + "m/serial",
		head:    r + "m/head",
		journal: r + "j/",
		evals:   r + "e/",
	}
}

func hex16(n uint64) string { return fmt.Sprintf("%016x", n) }

func parseHex16(s string) (uint64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return n, err == nil
}

func (k keys) varKey(name string) string              { return k.vars + name }
func (k keys) histPrefix(name string) string          { return k.hist + name + "/" }
func (k keys) histKey(name string, seq uint64) string { return k.histPrefix(name) + hex16(seq) }
func (k keys) stateKey(job string) string             { return k.states + job }
func (k keys) runKey(serial uint64) string            { return k.runs + hex16(serial) }
func (k keys) outKey(serial uint64) string            { return k.outs + hex16(serial) }
func (k keys) stepPrefix(step uint64) string          { return k.journal + hex16(step) + "/" }
func (k keys) partKey(step uint64, part int) string {
	return k.stepPrefix(step) + fmt.Sprintf("%04x", part)
}
func (k keys) markerKey(step uint64) string { return k.stepPrefix(step) + "commit" }

// evalPrefix is e/<job>/: job's evaluations (job names hold no slash).
func (k keys) evalPrefix(job string) string { return k.evals + job + "/" }

// evalKey is the slot that evaluation seq of job takes in its ring.
func (k keys) evalKey(job string, seq uint64) string {
	return k.evalPrefix(job) + fmt.Sprintf("%02x", seq%whenlua.EvalKeep)
}

// histSeq returns the sequence at the end of a history key.
func histSeq(key string) (uint64, bool) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return 0, false
	}
	return parseHex16(key[i+1:])
}

// serialOf returns the serial at the end of a run or output key.
func serialOf(key, prefix string) (uint64, bool) {
	if !strings.HasPrefix(key, prefix) {
		return 0, false
	}
	return parseHex16(key[len(prefix):])
}

// storedVersion is a version as stored: its time in Unix nanoseconds, so
// that it reads back as persist gives it.
// C is the step of the commit that stored it (whenlua.Version.Commit).
type storedVersion struct {
	T int64           `json:"t"`
	O string          `json:"o,omitempty"`
	V whenlua.Value   `json:"v"`
	C uint64          `json:"c,omitempty"`
	M whenlua.SetMark `json:"m,omitzero"`
}

func encodeVersion(t time.Time, origin string, m whenlua.SetMark, commit uint64, v whenlua.Value) (string, error) {
	b, err := json.Marshal(storedVersion{T: t.UnixNano(), O: origin, V: v, C: commit, M: m})
	return string(b), err
}

func decodeVersion(b []byte) (whenlua.Version, error) {
	var sv storedVersion
	if err := json.Unmarshal(b, &sv); err != nil {
		return whenlua.Version{}, fmt.Errorf("decode version: %w", err)
	}
	return whenlua.Version{Value: sv.V, Time: time.Unix(0, sv.T), Origin: sv.O, Commit: sv.C, Mark: sv.M}, nil
}

// storedState is a job state as stored.
type storedState struct {
	Cond      string                   `json:"c"`
	Result    bool                     `json:"r,omitempty"`
	Evaluated bool                     `json:"e,omitempty"`
	HasSnap   bool                     `json:"h,omitempty"` // Snapshot is a non-nil map
	Snapshot  map[string]whenlua.Value `json:"s,omitempty"`
	Pending   int64                    `json:"p,omitempty"`
	Success   int64                    `json:"ls,omitempty"`
	Silent    int64                    `json:"ss,omitempty"`
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func encodeJobState(st *whenlua.JobState) (string, error) {
	ss := storedState{Cond: st.Cond, Result: st.Result, Evaluated: st.Evaluated, HasSnap: st.Snapshot != nil, Snapshot: st.Snapshot,
		Pending: unixNano(st.PendingSince), Success: unixNano(st.LastSuccess), Silent: unixNano(st.SilentSince)}
	b, err := json.Marshal(ss)
	return string(b), err
}

func decodeJobState(b []byte) (whenlua.JobState, error) {
	var ss storedState
	if err := json.Unmarshal(b, &ss); err != nil {
		return whenlua.JobState{}, fmt.Errorf("decode job state: %w", err)
	}
	st := whenlua.JobState{Cond: ss.Cond, Result: ss.Result, Evaluated: ss.Evaluated, Snapshot: ss.Snapshot}
	if ss.HasSnap && st.Snapshot == nil {
		st.Snapshot = map[string]whenlua.Value{}
	}
	st.PendingSince, st.LastSuccess, st.SilentSince = fromUnixNano(ss.Pending), fromUnixNano(ss.Success), fromUnixNano(ss.Silent)
	return st, nil
}

// encodeRun is the run record as JSON, without its output (stored apart).
func encodeRun(r whenlua.Run) (string, error) {
	r.Output = nil
	b, err := json.Marshal(r)
	return string(b), err
}

func decodeRun(b []byte) (whenlua.Run, error) {
	var r whenlua.Run
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode run: %w", err)
	}
	return r, nil
}

func encodeEval(e whenlua.Evaluation) (string, error) {
	b, err := json.Marshal(e)
	return string(b), err
}

func decodeEval(b []byte) (whenlua.Evaluation, error) {
	var e whenlua.Evaluation
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("decode evaluation: %w", err)
	}
	return e, nil
}
