package whenlua

import (
	"fmt"
	"strings"
	"time"
)

// AlreadyRunningError is the error of starting a daemon when another one
// holds the home's lock or answers on its socket.
type AlreadyRunningError struct {
	PID   int // 0 when the running daemon's pid could not be read
	Where string
}

func (e *AlreadyRunningError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("a daemon is already running for %s", e.Where)
	}
	return fmt.Sprintf("a daemon is already running for %s (pid %d)", e.Where, e.PID)
}

// IsJobFile tells whether a directory entry name is a job file: *.lua, not
// hidden, not an editor's lock or backup file.
func IsJobFile(name string) bool {
	return strings.HasSuffix(name, ".lua") && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "#")
}

// Origins recorded with each version of a variable (SPEC §5).
const (
	OriginCLI     = "cli"
	OriginWhisper = "whisper"
)

// The parts of the origins that name a job or a file.
const (
	originJob     = "job "
	originPost    = " post"
	originPre     = " pre"
	originSilence = " on_silence"
	originLoad    = "load of file "
)

// OriginPost is the origin of a set made by a job's post hook.
func OriginPost(job string) string { return originJob + job + originPost }

// OriginPre is the origin of a set made by a job's pre hook.
func OriginPre(job string) string { return originJob + job + originPre }

// OriginSilence is the origin of a set made by a job's on_silence hook.
func OriginSilence(job string) string { return originJob + job + originSilence }

// OriginLoad is the origin of a set made while file path was loading
// (top-level code or on_load) or unloading (on_unload).
func OriginLoad(path string) string { return originLoad + path }

// OriginKind sorts an origin into one of a few kinds, without the job or
// file it names: "cli", "whisper", "load", "pre", "post", "on_silence", or
// "other" (the label of the daemon's set metric).
func OriginKind(origin string) string {
	switch {
	case origin == OriginCLI:
		return "cli"
	case origin == OriginWhisper:
		return "whisper"
	case strings.HasPrefix(origin, originLoad):
		return "load"
	case strings.HasPrefix(origin, originJob):
		switch {
		case strings.HasSuffix(origin, originPre):
			return "pre"
		case strings.HasSuffix(origin, originPost):
			return "post"
		case strings.HasSuffix(origin, originSilence):
			return "on_silence"
		}
	}
	return "other"
}

// Version is one stored version of a variable.
type Version struct {
	Value  Value     `json:"value"`
	Time   time.Time `json:"time"`
	Origin string    `json:"origin"`
	// Commit, when nonzero, orders versions across variables: the versions
	// stored by one commit share it, and a later commit has a larger one.
	Commit uint64  `json:"commit,omitempty"`
	Mark   SetMark `json:"mark,omitzero"`
}

// RunState is where a run is in its life.
type RunState string

// Run states. A run is "running" from the moment its serial is committed,
// or "queued" while every slot for a process is taken (the daemon's
// --max-runs); a daemon that finds either at start marks them "lost".
const (
	RunRunning   RunState = "running"
	RunQueued    RunState = "queued"
	RunCancelled RunState = "cancelled" // cancelled, or the daemon stopped, while queued: nothing ran
	RunDone      RunState = "done"
	RunRefused   RunState = "refused" // pre returned false: the serial is used, nothing ran
	RunFailed    RunState = "failed"  // the process could not be started
	RunLost      RunState = "lost"    // in flight when the daemon died
)

// Run is the record of one run attempt of a job.
type Run struct {
	Serial  uint64 `json:"serial"`
	Job     string `json:"job"`
	File    string `json:"file"`
	Trigger string `json:"trigger"` // "when", "every", "cron", "start"
	// Scheduled is the time an every- or cron-run stands for: its scheduled
	// time or, for a catch-up run (CatchUp), the latest time it missed.
	Scheduled time.Time `json:"scheduled,omitzero"`
	CatchUp   bool      `json:"catch_up,omitempty"`
	// Attempt counts the attempts of a job with the retry option, from 1;
	// FirstSerial is the serial of attempt 1 (set from attempt 2 on);
	// RetryAt, on a failed attempt, is when the next one is due (zero: this
	// attempt is final).
	Attempt     int       `json:"attempt,omitempty"`
	FirstSerial uint64    `json:"first_serial,omitempty"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
	State       RunState  `json:"state"`
	// Start is when the run left the queue to start its process (when it
	// was made due, for a run that never waited); Queued, for a run that
	// waited for a free slot (--max-runs), is when it was made due.
	Start  time.Time `json:"start"`
	Queued time.Time `json:"queued,omitzero"`
	End    time.Time `json:"end,omitzero"`
	PID    int       `json:"pid,omitempty"`
	Dir    string    `json:"dir,omitempty"`
	// Node is the cluster node that claimed the run and ran its process
	// (empty on a single daemon, and while no node has claimed it).
	Node   string `json:"node,omitempty"`
	Code   int    `json:"code"`             // exit code; -1 when killed by a signal or not run
	Signal string `json:"signal,omitempty"` // e.g. "terminated", "killed"
	Error  string `json:"error,omitempty"`  // why it was refused, failed, timed out or lost
	// Output is the stored output: its head and tail when it was longer than
	// the cap, with a marker line between them saying how much was left out.
	Output     []byte `json:"output,omitempty"`
	OutputSize int64  `json:"output_size"` // bytes the job wrote in all
}

// Where a job runs in a cluster, its on option: any live node (the
// default), the leader, or the node of that name (ValidateNodeName).
const (
	OnAny    = "any"
	OnLeader = "leader"
)

// ValidateNodeName checks the name of a cluster node, one segment of an
// etcd key: 1 to 64 letters, digits, '-', '_' and '.'.
func ValidateNodeName(name string) error {
	ok := name != "" && len(name) <= 64
	for _, c := range []byte(name) {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
	}
	if !ok {
		return fmt.Errorf("%w: node name %q: want 1 to 64 letters, digits, '-', '_' or '.'", ErrInvalid, name)
	}
	if name == OnAny || name == OnLeader {
		return fmt.Errorf("%w: node name %q: it names a placement in a job's on option", ErrInvalid, name)
	}
	return nil
}

// FirstAttempt is the serial of the run's first attempt: FirstSerial, or
// the run's own serial when it is the first.
func (r Run) FirstAttempt() uint64 {
	if r.FirstSerial == 0 {
		return r.Serial
	}
	return r.FirstSerial
}

// Duration is End-Start, or zero while running.
func (r Run) Duration() time.Duration {
	if r.End.IsZero() {
		return 0
	}
	return r.End.Sub(r.Start)
}

// JobState is the persisted state of one job: the evaluation state of a
// when-job (SPEC §4), and, for a job of any kind, its last success and
// silence alarm.
type JobState struct {
	Cond      string           `json:"cond"`      // condition source, to tell whether it changed across a reload
	Result    bool             `json:"result"`    // previous result
	Evaluated bool             `json:"evaluated"` // false before the first evaluation: prev() is nil
	Snapshot  map[string]Value `json:"snapshot"`  // values at the last evaluation, of the names the job may read
	// PendingSince, for a job with the hold option, is when its condition
	// became true, while it waits to have held that long; zero otherwise.
	PendingSince time.Time `json:"pending_since,omitzero"`
	// LastSuccess is when the job's last successful run ended (zero: none
	// known); SilentSince, for a job with the expect option, is when its
	// silence alarm was raised (zero: not silent).
	LastSuccess time.Time `json:"last_success,omitzero"`
	SilentSince time.Time `json:"silent_since,omitzero"`
}

// KeepRuns is s with its evaluation state cleared and its last success and
// silence alarm kept, for a job whose condition changed or that is no
// when-job; nil when nothing is left to keep.
func (s *JobState) KeepRuns() *JobState {
	if s == nil || s.LastSuccess.IsZero() && s.SilentSince.IsZero() {
		return nil
	}
	return &JobState{LastSuccess: s.LastSuccess, SilentSince: s.SilentSince}
}
