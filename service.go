package whenlua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ProtocolVersion is the version of the request/response protocol spoken on
// the daemon's socket. Every path starts with /v1/. A daemon answers a
// request of another version with 400 and a message naming both.
const ProtocolVersion = 1

// Service is what the daemon offers its clients. The engine implements it in
// the daemon; Client implements it over the socket, so the CLI and the tests
// use one interface. Errors wrapping ErrInvalid, ErrNotFound or ErrConflict
// keep that identity across the socket.
type Service interface {
	// Set applies the assignments atomically (one durable commit, one
	// version each) and, in ModeSet, triggers the when-jobs that become
	// due. ModeWhisper stores without evaluating. ModeTest changes nothing
	// and reports the jobs that would run.
	Set(ctx context.Context, req SetRequest) (SetResponse, error)
	// Get returns the current value of a variable (Nil when unset).
	Get(ctx context.Context, name string) (Value, error)
	// Vars returns every set variable.
	Vars(ctx context.Context) (map[string]Value, error)
	// History returns up to n versions of name, newest first (n <= 0: all kept).
	History(ctx context.Context, name string, n int) ([]Version, error)
	// Names returns every loaded job.
	Names(ctx context.Context) ([]JobInfo, error)
	// Jobs returns the running runs, oldest serial first.
	Jobs(ctx context.Context) ([]Run, error)
	// Start runs a job now, unconditionally (its pre hook still decides).
	Start(ctx context.Context, name string) (Run, error)
	// Cancel stops a running run: SIGTERM to its process group, SIGKILL after the grace period.
	Cancel(ctx context.Context, serial uint64) error
	// Tail writes a run's output to w as it grows, from the start, until the
	// run ends or ctx is done. A finished run's stored output is written at once.
	Tail(ctx context.Context, serial uint64, w io.Writer) error
	// Log returns finished runs, newest first, of one job or all ("").
	Log(ctx context.Context, job string, n int) ([]Run, error)
	// Run returns one run record, with its stored output.
	Run(ctx context.Context, serial uint64) (Run, error)
	// Status describes the daemon, the job files and the next runs.
	Status(ctx context.Context) (Status, error)
	// Reload rescans the jobs directory now and returns the status after it.
	Reload(ctx context.Context, req ReloadRequest) (Status, error)
	// Why returns a job's state and its newest evaluations (at most
	// EvalKeep), newest first; an unknown job gives ErrNotFound.
	Why(ctx context.Context, job string) (WhyReport, error)
}

// ReloadRequest is what Reload does besides the rescan, which loads only
// the files whose content changed: with Force, it loads again the job
// files named in Files (absolute paths in the jobs directory), or every job
// file when Files is empty, even if they did not change.
type ReloadRequest struct {
	Force bool     `json:"force,omitempty"`
	Files []string `json:"files,omitempty"`
}

// Validate checks that Files come with Force.
func (r ReloadRequest) Validate() error {
	if len(r.Files) > 0 && !r.Force {
		return fmt.Errorf("%w: files to reload are given only with force", ErrInvalid)
	}
	return nil
}

// Errors with a meaning across the socket.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrNoDaemon = errors.New("no daemon")
	// ErrNotLeader is a cluster node's answer to a call forwarded to it
	// when it is not the leader: it did nothing, and the call may be sent
	// to the leader.
	ErrNotLeader = errors.New("not the leader")
)

// Mode says what a SetRequest does.
type Mode string

// Set modes.
const (
	ModeSet     Mode = "set"
	ModeWhisper Mode = "whisper"
	ModeTest    Mode = "test"
)

// SetRequest is a set, whisper or test of several variables at once. A
// Value of type nil unsets its variable.
type SetRequest struct {
	Mode        Mode         `json:"mode"`
	Assignments []Assignment `json:"assignments"`
	// Origin is recorded with each version; the daemon fills in "cli" or
	// "whisper" when it is empty. It is not part of the socket protocol:
	// the daemon sets the origin of its clients' requests itself.
	Origin string `json:"-"`
}

// Limits of one set, so that every set the boundary accepts fits in one
// store transaction: at most MaxAssignments names, and at most
// MaxSetBytes of names and string values together.
const (
	MaxAssignments = 1000
	MaxSetBytes    = 256 << 10
)

// Validate checks a set at the boundary: its mode, each name and value,
// no name twice, and the limits of one set.
func (r SetRequest) Validate() error {
	switch r.Mode {
	case "", ModeSet, ModeWhisper, ModeTest:
	default:
		return fmt.Errorf("%w: unknown mode %q", ErrInvalid, r.Mode)
	}
	if len(r.Assignments) == 0 {
		return fmt.Errorf("%w: nothing to set", ErrInvalid)
	}
	if len(r.Assignments) > MaxAssignments {
		return fmt.Errorf("%w: %d assignments in one set, more than %d: split them into several sets", ErrInvalid, len(r.Assignments), MaxAssignments)
	}
	size := 0
	seen := make(map[string]bool, len(r.Assignments))
	for _, a := range r.Assignments {
		if err := a.Validate(); err != nil {
			return err
		}
		if seen[a.Name] {
			return fmt.Errorf("%w: %s is assigned twice", ErrInvalid, a.Name)
		}
		seen[a.Name] = true
		size += len(a.Name) + len(a.Value.S)
	}
	if size > MaxSetBytes {
		return fmt.Errorf("%w: %d bytes of names and values in one set, more than %d: split them into several sets", ErrInvalid, size, MaxSetBytes)
	}
	return nil
}

// SetResponse tells what a set did (or, in ModeTest, would do).
type SetResponse struct {
	// Triggered names the jobs that became due, in the order they run.
	Triggered []string `json:"triggered"`
}

// JobInfo describes one loaded job.
type JobInfo struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Line   int    `json:"line"`
	Kind   string `json:"kind"`             // "when", "every" or "cron"
	Cond   string `json:"cond,omitempty"`   // a when-job's condition source
	Period string `json:"period,omitempty"` // an every-job's period
	Cron   string `json:"cron,omitempty"`   // a cron-job's expression
	// Zone names the zone an every- or cron-job's times are read in (an
	// IANA name; "UTC" for an every-job aligned to the epoch).
	Zone    string    `json:"zone,omitempty"`
	Next    time.Time `json:"next,omitzero"` // an every- or cron-job's next run
	Running int       `json:"running"`       // runs of it now running
}

// Spec is what decides when the job runs: a when-job's condition, an
// every-job's period or a cron-job's expression.
func (j JobInfo) Spec() string {
	switch j.Kind {
	case "every":
		return j.Period
	case "cron":
		return j.Cron
	}
	return j.Cond
}

// Pending is a when-job waiting for its condition to hold: true since
// Since, due at Due unless it turns false before.
type Pending struct {
	Job   string    `json:"job"`
	Since time.Time `json:"since"`
	Due   time.Time `json:"due"`
}

// Silent is a job with the expect option that went without a successful
// run for longer than Expect: its alarm was raised at SilentSince;
// LastSuccess is when its last successful run ended (zero: none known).
type Silent struct {
	Job         string        `json:"job"`
	Expect      time.Duration `json:"expect"` // nanoseconds, as Go's durations
	LastSuccess time.Time     `json:"last_success,omitzero"`
	SilentSince time.Time     `json:"silent_since"`
}

// PendingRetry is a retry of a failed run: attempt Attempt of Job, due
// at At; FirstSerial is the serial of the job's first attempt.
type PendingRetry struct {
	Job         string    `json:"job"`
	Attempt     int       `json:"attempt"`
	FirstSerial uint64    `json:"first_serial"`
	At          time.Time `json:"at"`
}

// FileStatus is the load state of one job file, as a module reloader shows it.
type FileStatus struct {
	Path       string    `json:"path"`
	LoadedAt   time.Time `json:"loaded_at,omitzero"`
	Hash       string    `json:"hash,omitempty"`       // of the active version's content
	Generation uint64    `json:"generation,omitempty"` // counts the loads of this path
	Jobs       int       `json:"jobs"`
	Requires   []string  `json:"requires,omitempty"` // lib modules it required
	// Error is the last load error (file:line: message) when the newest
	// content failed to load; the previous version, if any, stays active.
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
	// HookError is the last error of an on_load or on_unload hook of this
	// file ("on_load: file:line: message"); the version stays active.
	HookError   string    `json:"hook_error,omitempty"`
	HookErrorAt time.Time `json:"hook_error_at,omitzero"`
	OldRuns     int       `json:"old_runs"` // runs still held by replaced versions
	Compiles    uint64    `json:"compiles"` // times this path was compiled
}

// Status is the daemon's state as `whenlua status` shows it.
type Status struct {
	PID      int          `json:"pid"`
	Version  string       `json:"version"`
	Started  time.Time    `json:"started"`
	Home     string       `json:"home"`
	JobsDir  string       `json:"jobs_dir"`
	StateDir string       `json:"state_dir"`
	Socket   string       `json:"socket"`
	Files    []FileStatus `json:"files"`
	Next     []JobInfo    `json:"next"` // every-jobs by next run time
	// Pending lists the when-jobs whose condition is true and waiting to
	// have held for their hold option.
	Pending []Pending `json:"pending,omitempty"`
	// Retries lists the retries of failed runs waiting for their time.
	Retries  []PendingRetry `json:"retries,omitempty"`
	Running  int            `json:"running"` // runs with a process now
	Queued   int            `json:"queued"`  // runs waiting for a free slot (--max-runs)
	Compiles uint64         `json:"compiles"`
	// CondErrors lists the last error of each when-job whose condition
	// raised one (job: file:line: message).
	CondErrors []string `json:"cond_errors,omitempty"`
	// Silent lists the jobs whose silence alarm is raised (expect).
	Silent []Silent `json:"silent,omitempty"`
	// Metrics is the address the daemon serves Prometheus metrics on
	// (daemon run --metrics), "" when it does not.
	Metrics string `json:"metrics,omitempty"`
	// Cluster describes the cluster of a daemon started with --etcd.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// ClusterStatus is a cluster as one of its nodes sees it.
type ClusterStatus struct {
	Name      string        `json:"name"`
	Node      string        `json:"node"`   // the node that answered
	Leader    string        `json:"leader"` // "" while none is elected
	Endpoints []string      `json:"endpoints"`
	Nodes     []ClusterNode `json:"nodes"` // the live nodes, by name
}

// ClusterNode is one live node of a cluster.
type ClusterNode struct {
	Name    string            `json:"name"`
	Addr    string            `json:"addr"` // its node-to-node endpoint
	PID     int               `json:"pid"`
	Started time.Time         `json:"started"`
	Leader  bool              `json:"leader"`
	Files   map[string]string `json:"files"` // job file name -> content hash
	// Differs is set when its job files are not the leader's.
	Differs bool `json:"differs,omitempty"`
}
