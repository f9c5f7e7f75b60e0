package host

// `whenlua simulate`: the stored history of every variable replayed through
// one job file in a throwaway engine. The engine is the real one (the
// state, the loader, applySet, settle, fixpoint, evalJob, holds) on a store
// that keeps nothing, with a clock set to each version's recorded time and
// no runner: startRun records the job instead of running it (state.sim).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/luaapi"
)

// markSet gives the versions of the set just applied (from batch index
// first) their mark: the set's number in the step, how many evaluation
// rounds of the step's earlier sets had begun, and whether it queued a
// round of its own. A replay uses it to apply and evaluate the step's sets
// in the engine's order (whenlua.SetMark).
func (st *state) markSet(first int, whisper, queued bool) {
	st.step.sets++
	m := whenlua.SetMark{Set: st.step.sets, Rounds: sort.SearchInts(st.step.setRounds, st.step.rounds), Queued: queued, Whisper: whisper}
	if queued {
		// The round just queued is the last of the queue.
		st.step.setRounds = append(st.step.setRounds, st.step.rounds+len(st.step.evalQueue)-1)
	}
	for i := first; i < len(st.step.batch.Vars); i++ {
		st.step.batch.Vars[i].Mark = m
	}
}

// ScanHistory implements whenlua.HistoryScanner by reading the store
// directly, as History does: badger reads do not wait for the engine.
func (e *Engine) ScanHistory(ctx context.Context, fn func(whenlua.VarVersion) error) error {
	hs, ok := e.store.(whenlua.HistoryScanner)
	if !ok {
		return fmt.Errorf("%w: this daemon's store cannot list the history of every variable", whenlua.ErrInvalid)
	}
	return hs.ScanHistory(ctx, fn)
}

// SimulateOptions configures Simulate.
type SimulateOptions struct {
	// File is the job file to replay the history through; its jobs are
	// named as they would be in the jobs directory (by its stem).
	File string
	// LibDir holds the modules the file may require.
	LibDir string
	// Since and Until bound what is reported. Versions after Until are
	// left out; those before Since are replayed without reporting, so that
	// the state at Since is the one the history built. Zero: unbounded.
	Since, Until time.Time
	// MaxTimes bounds the scheduled times listed per every- or cron-job
	// (default 100).
	MaxTimes int
	// LuaTimeout and LuaMemoryLimit bound each Lua call, as in the daemon.
	LuaTimeout     time.Duration
	LuaMemoryLimit int64
	// Now is the end of the window when Until is zero (default time.Now).
	Now func() time.Time
}

// Simulation is what Simulate found.
type Simulation struct {
	File     string    `json:"file"`
	From     time.Time `json:"from,omitzero"` // the window reported
	To       time.Time `json:"to,omitzero"`
	Versions int       `json:"versions"` // versions replayed (those before From included)
	Sets     int       `json:"sets"`
	// Due lists each time a when-job would have become due, in the order
	// the daemon would have started them.
	Due []SimDue `json:"due"`
	// Scheduled lists the scheduled times of every- and cron-jobs in the
	// window.
	Scheduled []SimSchedule `json:"scheduled"`
	// Errors counts, per when-job, the evaluations in the window whose
	// condition raised an error (such an evaluation is never due), with
	// the first of them.
	Errors []SimError `json:"errors"`
}

// SimError is the condition errors of one when-job in a simulation.
type SimError struct {
	Job   string    `json:"job"`
	Count int       `json:"count"`
	First time.Time `json:"first"` // the recorded time of the first
	Error string    `json:"error"` // the first one's message (file:line: ...)
}

// SimDue is one time a when-job would have become due.
type SimDue struct {
	Time time.Time `json:"time"` // the recorded time of the set (or the end of the hold)
	Job  string    `json:"job"`
	// By is what made it due: the origin of the set ("cli", "whisper",
	// "job J post", ...), "hold" when its hold ran out, or "load".
	By string `json:"by"`
	// Values are the values, at that moment, of the variables its condition
	// reads (unset ones as null).
	Values map[string]whenlua.Value `json:"values"`
	// PreNotConsulted: the job has a pre function, which a simulation does
	// not call; the daemon would have asked it.
	PreNotConsulted bool `json:"pre_not_consulted,omitempty"`
}

// SimSchedule is the scheduled times of one every- or cron-job in the window.
type SimSchedule struct {
	Job   string      `json:"job"`
	Kind  string      `json:"kind"` // "every" or "cron"
	Spec  string      `json:"spec"`
	Times []time.Time `json:"times"`
	// More: the listing stopped at MaxTimes; more times follow in the window.
	More bool `json:"more,omitempty"`
}

// DefaultSimulateMaxTimes bounds the scheduled times listed per job.
const DefaultSimulateMaxTimes = 100

// simulation is the recorder state.sim points to while Simulate runs.
type simulation struct {
	st     *state
	out    *Simulation
	by     string // what the evaluations now running stand for
	silent bool   // before the window: nothing is reported
	// read holds, for a job whose condition may read any variable, the
	// names read by the evaluation that made it due: the values reported.
	read map[*job][]string
}

// condError counts an evaluation of j whose condition raised err.
func (s *simulation) condError(j *job, err error) {
	if s.silent {
		return
	}
	for i := range s.out.Errors {
		if s.out.Errors[i].Job == j.name {
			s.out.Errors[i].Count++
			return
		}
	}
	s.out.Errors = append(s.out.Errors, SimError{Job: j.name, Count: 1, First: s.st.e.clock.Now(), Error: err.Error()})
}

// madeDue notes the names the evaluation that made j due read.
func (s *simulation) madeDue(j *job, read []string) {
	if j.all {
		s.read[j] = read
	}
}

// due records j as due now instead of starting it (state.startRun).
func (s *simulation) due(j *job) whenlua.Run {
	now := s.st.e.clock.Now()
	if !s.silent {
		vals := map[string]whenlua.Value{}
		if j.all {
			for _, name := range s.read[j] {
				vals[name] = s.st.vars[name]
			}
		} else {
			for name := range j.deps {
				vals[name] = s.st.vars[name]
			}
		}
		s.out.Due = append(s.out.Due, SimDue{Time: now, Job: j.name, By: s.by, Values: vals, PreNotConsulted: j.lj.HasPre})
	}
	return whenlua.Run{Job: j.name, File: j.gen.path, Trigger: luaapi.When.String(), State: whenlua.RunDone, Start: now, End: now}
}

// simClock is the throwaway engine's clock: it reads what the replay set,
// and its timers never fire (the replay fires holds itself).
type simClock struct{ now time.Time }

func (c *simClock) Now() time.Time               { return c.now }
func (c *simClock) NewTimer(time.Duration) Timer { return simTimer{} }

type simTimer struct{}

func (simTimer) C() <-chan time.Time { return nil }
func (simTimer) Stop() bool          { return true }

// discardStore is the throwaway engine's store: the replay keeps its state
// in memory, and nothing of it is written anywhere.
type discardStore struct{}

func (discardStore) Commit(*whenlua.Batch) error                    { return nil }
func (discardStore) Vars() (map[string]whenlua.Value, error)        { return map[string]whenlua.Value{}, nil }
func (discardStore) History(string, int) ([]whenlua.Version, error) { return nil, nil }
func (discardStore) JobStates() (map[string]whenlua.JobState, error) {
	return map[string]whenlua.JobState{}, nil
}
func (discardStore) Serial() (uint64, error) { return 0, nil }
func (discardStore) Run(serial uint64) (whenlua.Run, error) {
	return whenlua.Run{}, fmt.Errorf("run %d: %w", serial, whenlua.ErrNotFound)
}
func (discardStore) Runs(string, int) ([]whenlua.Run, error)          { return nil, nil }
func (discardStore) RunningRuns() ([]whenlua.Run, error)              { return nil, nil }
func (discardStore) Evaluations(string) ([]whenlua.Evaluation, error) { return nil, nil }
func (discardStore) DropEvaluations([]string) error                   { return nil }
func (discardStore) EvalSeqs() (map[string]uint64, error)             { return map[string]uint64{}, nil }
func (discardStore) Trim() error                                      { return nil }
func (discardStore) Close() error                                     { return nil }

// simSet is one set of the history: the versions one apply stored.
type simSet struct {
	time   time.Time
	origin string
	mark   whenlua.SetMark
	as     []whenlua.Assignment
}

// groupHistory orders the versions as they were stored (by commit, then by
// set; each variable's own order is kept) and groups them into commits of
// sets. Versions without a mark (stored by an older version of whenlua, or
// by a store that does not keep marks) come first, by time (an older
// store's versions were rewritten by its migration, whose commits say
// nothing of their order), each a set of its own, evaluated before the
// next.
func groupHistory(hist []whenlua.VarVersion, until time.Time) [][]simSet {
	vs := hist // sorted in place: a long history is not held twice
	if !until.IsZero() {
		vs = slices.DeleteFunc(vs, func(v whenlua.VarVersion) bool { return v.Time.After(until) })
	}
	slices.SortStableFunc(vs, func(a, b whenlua.VarVersion) int {
		switch am, bm := a.Mark.Set != 0 && a.Commit != 0, b.Mark.Set != 0 && b.Commit != 0; {
		case !am && !bm:
			return a.Time.Compare(b.Time)
		case am != bm:
			if am {
				return 1
			}
			return -1
		case a.Commit != b.Commit:
			if a.Commit < b.Commit {
				return -1
			}
			return 1
		}
		return a.Mark.Set - b.Mark.Set
	})
	var commits [][]simSet
	for i, v := range vs {
		a := whenlua.Assignment{Name: v.Name, Value: v.Value}
		sameCommit := i > 0 && v.Commit != 0 && v.Commit == vs[i-1].Commit
		if sameCommit && v.Mark.Set != 0 && v.Mark.Set == vs[i-1].Mark.Set {
			// Another version of the same set.
			c := commits[len(commits)-1]
			c[len(c)-1].as = append(c[len(c)-1].as, a)
			continue
		}
		s := simSet{time: v.Time, origin: v.Origin, mark: v.Mark, as: []whenlua.Assignment{a}}
		if v.Mark.Set == 0 || v.Commit == 0 {
			// Unknown: a set applied and evaluated alone.
			s.mark = whenlua.SetMark{Set: 1, Queued: true, Whisper: v.Origin == whenlua.OriginWhisper}
			sameCommit = false
		}
		if sameCommit {
			commits[len(commits)-1] = append(commits[len(commits)-1], s)
		} else {
			commits = append(commits, []simSet{s})
		}
	}
	return commits
}

// simRound is the evaluation round of one set, waiting for its turn.
type simRound struct {
	cands  evalBatch
	queued bool // the daemon queued a round for this set
	by     string
	silent bool
}

// Simulate replays hist (every kept version of every variable, in any
// order; Simulate reorders it in place) through the job file opts.File in
// a throwaway engine and reports when its when-jobs would have become due, and the scheduled times of its
// every- and cron-jobs in the window. Nothing runs: no process, no pre or
// post; sets made by the file's own code (top level, on_load, hooks) are
// dropped, as the history holds those the daemon made. The file is loaded
// once, before the first version, with no variable set: its when-jobs see
// reloaded() true at that first evaluation only. A load error is returned
// as file:line: message.
func Simulate(ctx context.Context, opts SimulateOptions, hist []whenlua.VarVersion) (*Simulation, error) {
	if opts.MaxTimes <= 0 {
		opts.MaxTimes = DefaultSimulateMaxTimes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	path, err := filepath.Abs(opts.File)
	if err != nil {
		return nil, err
	}
	commits := groupHistory(hist, opts.Until)
	out := &Simulation{File: path, From: opts.Since, To: opts.Until, Due: []SimDue{}, Scheduled: []SimSchedule{}, Errors: []SimError{}}
	if out.To.IsZero() {
		out.To = opts.Now()
	}
	clk := &simClock{now: out.To}
	switch {
	case len(commits) > 0:
		clk.now = commits[0][0].time
	case !opts.Since.IsZero():
		clk.now = opts.Since
	}
	if out.From.IsZero() {
		out.From = clk.now
	}
	e := NewEngine(EngineOptions{
		Store:          discardStore{},
		Clock:          clk,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Paths:          whenlua.Paths{LibDir: opts.LibDir},
		LuaTimeout:     opts.LuaTimeout,
		LuaMemoryLimit: opts.LuaMemoryLimit,
		PollEvery:      -1,
		Env:            []string{},
		NoEvalTrace:    true, // the replay keeps no evaluations
	})
	st, err := newState(e)
	if err != nil {
		return nil, err
	}
	e.st = st
	sim := &simulation{st: st, out: out, by: "load", silent: clk.now.Before(opts.Since), read: map[*job][]string{}}
	st.sim = sim
	defer sim.close()
	e.loader = newLoader(e)
	src, err := luaapi.ReadSource(path)
	if err != nil {
		return nil, err
	}
	r := e.loader.load(path, hashOf(src), src, loaderHooks{get: func(name string) whenlua.Value { return st.vars[name] }})
	if r.err != nil {
		return nil, r.err
	}
	st.handle(func() { st.applyLoad(&loadBatch{present: map[string]bool{path: true}, results: []*loadResult{r}}) })
	if ent := st.files[path]; ent == nil || ent.cur == nil {
		return nil, fmt.Errorf("%s: not loaded", path)
	}
	for _, c := range commits {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sim.fireHolds(c[0].time, opts.Since)
		sim.replayCommit(c, opts.Since)
		out.Sets += len(c)
		for _, s := range c {
			out.Versions += len(s.as)
		}
	}
	sim.fireHolds(out.To, opts.Since)
	sim.schedule(out.From, out.To, opts.MaxTimes)
	return out, nil
}

// replayCommit applies the sets of one commit and runs their evaluation
// rounds in the daemon's order: a set's round begins once the sets its
// mark says had begun theirs did, and a set applied meanwhile is seen by
// the rounds still waiting. A set whose round the daemon did not queue (no
// job then loaded could read it) has its round just before the next
// queued one. The commit's last rounds run at its end, as the daemon
// settles every step before it commits it.
func (s *simulation) replayCommit(c []simSet, since time.Time) {
	st := s.st
	clk := st.e.clock.(*simClock)
	var waiting []simRound
	begun := 0
	for _, set := range c {
		for begun < set.mark.Rounds && len(waiting) > 0 {
			r := waiting[0]
			waiting = waiting[1:]
			s.round(r)
			if r.queued {
				begun++
			}
		}
		clk.now = set.time
		n := len(st.step.evalQueue)
		st.applySet(set.origin, set.as, !set.mark.Whisper)
		if set.mark.Whisper {
			continue
		}
		r := simRound{queued: set.mark.Queued, by: set.origin, silent: set.time.Before(since)}
		if len(st.step.evalQueue) > n {
			r.cands = st.step.evalQueue[n]
			st.step.evalQueue = st.step.evalQueue[:n]
		}
		waiting = append(waiting, r)
	}
	for _, r := range waiting {
		s.round(r)
	}
	st.flush()
}

// round runs one set's evaluation round through the engine's settle.
func (s *simulation) round(r simRound) {
	if len(r.cands.cands) == 0 {
		return
	}
	s.by, s.silent = r.by, r.silent
	s.st.step.evalQueue = append(s.st.step.evalQueue, r.cands)
	s.st.settle()
}

// fireHolds ends the holds that run out at or before t, each at its own
// time, as the daemon's timer would have.
func (s *simulation) fireHolds(t, since time.Time) {
	st := s.st
	clk := st.e.clock.(*simClock)
	for len(st.sched.holds) > 0 && !st.sched.holds[0].at.After(t) {
		at := st.sched.holds[0].at
		clk.now = at
		s.by, s.silent = "hold", at.Before(since)
		st.handle(st.fireHolds)
	}
}

// schedule lists the scheduled times of the file's every- and cron-jobs
// in [from, to], at most max per job.
func (s *simulation) schedule(from, to time.Time, max int) {
	var jobs []*job
	for _, j := range s.st.jobs {
		if !j.isWhen() {
			jobs = append(jobs, j)
		}
	}
	sort.Slice(jobs, func(a, b int) bool { return whenlua.JobNameLess(jobs[a].name, jobs[b].name) })
	for _, j := range jobs {
		kind := j.lj.Kind.String()
		sch := SimSchedule{Job: j.name, Kind: kind, Spec: strings.TrimPrefix(j.lj.Schedule(), kind+" "), Times: []time.Time{}}
		for t := j.lj.Next(from.Add(-time.Nanosecond)); !t.IsZero() && !t.After(to); t = j.lj.Next(t) {
			if len(sch.Times) == max {
				sch.More = true
				break
			}
			sch.Times = append(sch.Times, t)
		}
		s.out.Scheduled = append(s.out.Scheduled, sch)
	}
}

// close releases the Lua states of the throwaway engine without calling
// on_unload: a simulation calls no hook that could act on the world.
func (s *simulation) close() {
	for _, ent := range s.st.files {
		for _, g := range append(ent.old, ent.cur, ent.pending) {
			if g != nil && !g.closed {
				g.closed = true
				g.file.Close()
			}
		}
	}
}
