package whenlua

import (
	"fmt"
	"strings"
	"time"
)

// EvalKeep is how many of each job's newest evaluations the daemon keeps
// for `whenlua why`: a ring of this many, persisted with the steps that
// make them.
const EvalKeep = 10

// Trigger kinds: what made an evaluation or a run happen.
const (
	TriggerSet      = "set"          // a set of variables the job may read
	TriggerLoad     = "load"         // its job file was loaded or changed
	TriggerReload   = "reload"       // `whenlua reload`
	TriggerStart    = "daemon start" // the daemon started and loaded its files
	TriggerHold     = "hold"         // the hold timer: the condition held long enough
	TriggerSchedule = "schedule"     // an every- or cron-job's scheduled time came
	TriggerRetry    = "retry"        // a failed run's retry came due
	TriggerManual   = "start"        // `whenlua start JOB`
)

// Outcome is what came of one evaluation or firing.
type Outcome string

// Outcomes, as `whenlua why --json` gives them.
const (
	OutcomeStillTrue Outcome = "still_true"   // not due: true now and at the previous evaluation
	OutcomeFalse     Outcome = "false"        // not due: false
	OutcomeDue       Outcome = "due"          // due, but not started (the step stopped a loop)
	OutcomeStarted   Outcome = "started"      // a run started: Serial
	OutcomeQueued    Outcome = "queued"       // a run waits for a free slot: Serial
	OutcomeRefused   Outcome = "refused"      // the pre hook refused (Reason) or the daemon was stopping
	OutcomeFailed    Outcome = "failed"       // the run could not be recorded or started
	OutcomeError     Outcome = "error"        // the condition raised: Reason
	OutcomeSuspended Outcome = "suspended"    // the condition ran out of its limits too often
	OutcomeHold      Outcome = "hold_pending" // true, waiting for its hold to pass
)

// Trigger says what made an evaluation or a run happen.
type Trigger struct {
	Kind string `json:"kind"` // one of the Trigger* constants
	// Origin, for a set, is the origin recorded with its versions (cli, job
	// X post, job X pre, load of file F); for a load, the file.
	Origin string `json:"origin,omitempty"`
	// Names are the variables the set assigned.
	Names []string `json:"names,omitempty"`
	// Time is when the set or load was applied.
	Time time.Time `json:"time,omitzero"`
}

// ReadValue is a variable a condition read: its value then, and its value
// in the job's previous snapshot (absent before the first evaluation).
type ReadValue struct {
	Name  string `json:"name"`
	Value Value  `json:"value"`
	Prev  *Value `json:"prev,omitempty"`
}

// Evaluation is one evaluation of a when-job's condition, or one firing of
// a job by its schedule, a retry, a hold or `whenlua start`.
type Evaluation struct {
	Job     string    `json:"job"`
	Seq     uint64    `json:"seq"` // counts the job's evaluations, from 1
	Time    time.Time `json:"time"`
	Trigger Trigger   `json:"trigger"`
	// When-jobs: the condition's result (false on an error), the previous
	// result (the edge state it was compared with), whether reloaded() was
	// true, and the variables it read.
	Cond       bool        `json:"cond,omitempty"` // the job is a when-job: Result and PrevResult mean something
	Result     bool        `json:"result"`
	PrevResult bool        `json:"prev_result"`
	Reloaded   bool        `json:"reloaded,omitempty"`
	Values     []ReadValue `json:"values,omitempty"`
	Outcome    Outcome     `json:"outcome"`
	Serial     uint64      `json:"serial,omitempty"` // the run it started, queued or refused
	// Reason is why the pre hook refused, the condition's error, or why a
	// due job was not started.
	Reason string `json:"reason,omitempty"`
	// Every- and cron-jobs: the scheduled time the firing stands for, and
	// whether it caught up on a missed one.
	Scheduled time.Time `json:"scheduled,omitzero"`
	CatchUp   bool      `json:"catch_up,omitempty"`
}

// SetRun fills in the outcome of the run r that e started (or tried to).
func (e *Evaluation) SetRun(r Run) {
	e.Serial = r.Serial
	switch r.State {
	case RunRunning:
		e.Outcome = OutcomeStarted
	case RunQueued:
		e.Outcome = OutcomeQueued
	case RunRefused:
		e.Outcome, e.Reason = OutcomeRefused, r.Error
	default:
		e.Outcome, e.Reason = OutcomeFailed, r.Error
	}
}

// WhyReport is what `whenlua why JOB` shows: the job, its state now, and
// its newest evaluations, newest first.
type WhyReport struct {
	Job    string `json:"job"`
	Loaded bool   `json:"loaded"` // false: the job is not loaded now; its kept evaluations remain
	Kind   string `json:"kind,omitempty"`
	Spec   string `json:"spec,omitempty"` // condition, period or cron expression
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	// When-jobs: the edge state now (the result of the last evaluation
	// that did not fail), the last condition error, a pending hold's due time.
	Result    bool      `json:"result"`
	CondError string    `json:"cond_error,omitempty"`
	HoldDue   time.Time `json:"hold_due,omitzero"`
	Suspended bool      `json:"suspended,omitempty"`
	// Every- and cron-jobs: the next scheduled time and when it fires (later by its jitter).
	NextScheduled time.Time `json:"next_scheduled,omitzero"`
	NextFire      time.Time `json:"next_fire,omitzero"`

	Evaluations []Evaluation `json:"evaluations"`
}

// whyTime is how why prints times: RFC 3339 with milliseconds and the
// local zone's offset.
const whyTime = "2006-01-02T15:04:05.000Z07:00"

// Lines renders r for people, as `whenlua why` and the REPL's why() print
// it: a heading, the job's state, then one block per evaluation, newest
// first. Times are RFC 3339 in the local zone.
func (r WhyReport) Lines() []string {
	ts := func(t time.Time) string { return t.Local().Format(whyTime) }
	var out []string
	head := r.Job
	if r.Loaded {
		head += fmt.Sprintf(" (%s %s, %s:%d)", r.Kind, strings.Join(strings.Fields(r.Spec), " "), r.File, r.Line)
	} else {
		head += " (not loaded now)"
	}
	out = append(out, head)
	switch {
	case r.Kind == "when":
		now := "false"
		if r.Result {
			now = "true"
		}
		line := "  edge state: " + now
		if r.Suspended {
			line += "; suspended"
		}
		if !r.HoldDue.IsZero() {
			line += "; hold pending, due at " + ts(r.HoldDue)
		}
		out = append(out, line)
		if r.CondError != "" {
			out = append(out, "  condition error: "+r.CondError)
		}
	case r.Loaded:
		next := "none"
		if !r.NextScheduled.IsZero() {
			next = ts(r.NextScheduled)
			if !r.NextFire.Equal(r.NextScheduled) {
				next += " (fires at " + ts(r.NextFire) + ")"
			}
		}
		out = append(out, "  next scheduled: "+next)
	}
	if len(r.Evaluations) == 0 {
		return append(out, "  no evaluation kept")
	}
	for _, e := range r.Evaluations {
		out = append(out, e.Lines()...)
	}
	return out
}

// Lines renders one evaluation: its time, trigger and outcome, then the
// values the condition read.
func (e Evaluation) Lines() []string {
	ts := func(t time.Time) string { return t.Local().Format(whyTime) }
	line := fmt.Sprintf("%s  %s: %s", ts(e.Time), e.Trigger.describe(), e.describe())
	out := []string{line}
	if e.Cond {
		res := fmt.Sprintf("    result %t, previous result %t", e.Result, e.PrevResult)
		if e.Reloaded {
			res += ", reloaded() true"
		}
		out = append(out, res)
	}
	if !e.Scheduled.IsZero() {
		s := "    scheduled " + ts(e.Scheduled)
		if e.CatchUp {
			s += " (catch-up for a missed time)"
		} else if late := e.Time.Sub(e.Scheduled).Round(time.Millisecond); late > 0 {
			s += fmt.Sprintf(" (fired %s later: jitter or a busy daemon)", late)
		}
		out = append(out, s)
	}
	for _, v := range e.Values {
		prev := "no previous evaluation"
		if v.Prev != nil {
			prev = "previous " + v.Prev.describe()
		}
		out = append(out, fmt.Sprintf("    %s = %s (%s)", v.Name, v.Value.describe(), prev))
	}
	return out
}

// describe is the value as a user reads it: nil for unset, strings quoted.
func (v Value) describe() string {
	switch v.T {
	case TypeNil:
		return "nil"
	case TypeString:
		return fmt.Sprintf("%q", v.S)
	}
	return v.String()
}

func (t Trigger) describe() string {
	switch t.Kind {
	case TriggerSet:
		s := "set"
		if len(t.Names) > 0 {
			s += " of " + strings.Join(t.Names, ", ")
		}
		if t.Origin != "" {
			s += " by " + t.Origin
		}
		return s
	case TriggerLoad:
		return OriginLoad(t.Origin)
	case TriggerReload:
		return "reload of file " + t.Origin
	case TriggerStart:
		return "daemon start (load of " + t.Origin + ")"
	case TriggerHold:
		return "hold timer"
	case TriggerSchedule:
		return "scheduled time"
	case TriggerRetry:
		return "retry"
	case TriggerManual:
		return "whenlua start"
	}
	return t.Kind
}

func (e Evaluation) describe() string {
	switch e.Outcome {
	case OutcomeStillTrue:
		return "not due: still true"
	case OutcomeFalse:
		return "not due: false"
	case OutcomeDue:
		s := "due"
		if e.Reason != "" {
			s += ", not started: " + e.Reason
		}
		return s
	case OutcomeStarted:
		return fmt.Sprintf("started serial %d", e.Serial)
	case OutcomeQueued:
		return fmt.Sprintf("queued serial %d (every slot for a process was taken)", e.Serial)
	case OutcomeRefused:
		return fmt.Sprintf("not started (serial %d): %s", e.Serial, e.Reason)
	case OutcomeFailed:
		return fmt.Sprintf("serial %d failed to start: %s", e.Serial, e.Reason)
	case OutcomeError:
		return "condition error: " + e.Reason
	case OutcomeSuspended:
		return "suspended: " + e.Reason
	case OutcomeHold:
		return "hold pending: " + e.Reason
	}
	return string(e.Outcome)
}
