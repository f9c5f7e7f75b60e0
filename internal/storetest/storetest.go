// Package storetest is the contract of whenlua.Store as tests: every
// implementation (persist on badger, cluster on etcd) runs the same suite,
// so that both keep exactly the same semantics. Only test files import it.
package storetest

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// Options are the retention options every implementation has, with the
// meaning persist.Options gives them.
type Options struct {
	HistoryKeep   int
	HistoryMaxAge time.Duration
	RunsKeep      int
	Now           func() time.Time
}

// Harness opens the implementation under test.
type Harness struct {
	// Open opens a new, empty store with o, without background
	// maintenance, and closes it when t ends.
	Open func(t testing.TB, o Options) whenlua.Store
	// Reopen closes s and opens what it stored again, with its options.
	Reopen func(t testing.TB, s whenlua.Store) whenlua.Store
	// Keys counts the keys s stores of a kind, read beneath the interface:
	// "history/<name>" (the versions of name), "runs" (run records) or
	// "outputs" (stored outputs).
	Keys func(t testing.TB, s whenlua.Store, kind string) int
}

// Run runs the contract against h, each case as a subtest.
func Run(t *testing.T, h Harness) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

var cases = []struct {
	name string
	fn   func(*testing.T, Harness)
}{
	{"non-finite floats are not stored", nonFiniteFloats},
	{"values round trip", valuesRoundTrip},
	{"unset removes the variable and records a nil version", unset},
	{"history of an unknown name is empty", historyUnknown},
	{"job states round trip and delete", jobStates},
	{"a job state keeps its pending hold", pendingHold},
	{"serial is zero until written and survives reopen", serial},
	{"every method fails after close", afterClose},
	{"a commit that fails stores nothing", failedCommit},
	{"a batch of 256 variables and 256 job states is stored whole", bigBatch},
	{"versions in one batch keep their order", versionsInOrder},
	{"history is newest first and limited to n", historyNewestFirst},
	{"a version without time gets the clock's time", versionWithoutTime},
	{"a clock stepped back neither reorders history nor trims the newer version", clockSteppedBack},
	{"retention holds at every commit", retentionAtEveryCommit},
	{"trim keeps the newest versions by count", trimByCount},
	{"trim by age never removes the newest version", trimByAge},
	{"a run round trips with its output", runRoundTrip},
	{"an unknown run is not found", unknownRun},
	{"runs are newest first, filtered by job and limited", runsListing},
	{"running runs lists only running and queued ones", runningRuns},
	{"trim of runs keeps the newest and every running one", trimRuns},
	{"a job state keeps its last success and silence alarm", lastSuccess},
	{"each job keeps its newest evaluations, newest first", evaluations},
	{"dropping evaluations deletes the whole rings of the jobs named and nothing else", dropEvaluations},
	{"versions keep their set mark and the order of their commits", marksAndCommits},
}

func lastSuccess(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	ok, silent := at(time.Hour), at(2*time.Hour)
	commit(t, s, &whenlua.Batch{JobStates: map[string]*whenlua.JobState{
		"every.1": {LastSuccess: ok, SilentSince: silent},
		"when.1":  {Cond: "x", Evaluated: true, LastSuccess: ok},
	}})
	got, err := h.Reopen(t, s).JobStates()
	if err != nil {
		t.Fatal(err)
	}
	if g := got["every.1"]; !g.LastSuccess.Equal(ok) || !g.SilentSince.Equal(silent) {
		t.Errorf("every.1: %+v", g)
	}
	if g := got["when.1"]; !g.LastSuccess.Equal(ok) || !g.SilentSince.IsZero() || g.Cond != "x" {
		t.Errorf("when.1: %+v", g)
	}
}

func evaluations(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	for seq := uint64(1); seq <= whenlua.EvalKeep+3; seq++ {
		commit(t, s, &whenlua.Batch{Evals: []whenlua.Evaluation{
			{Job: "a", Seq: seq, Time: at(time.Duration(seq) * time.Second), Cond: true, Result: seq%2 == 0, Outcome: whenlua.OutcomeStarted, Serial: seq},
		}})
	}
	commit(t, s, &whenlua.Batch{Evals: []whenlua.Evaluation{{Job: "ab", Seq: 1, Time: at(0)}}})
	if err := s.Commit(&whenlua.Batch{Evals: []whenlua.Evaluation{{Job: "a/b", Seq: 1}}}); !errors.Is(err, whenlua.ErrInvalid) {
		t.Errorf("an evaluation of a job named a/b: %v", err)
	}
	s = h.Reopen(t, s)
	evs, err := s.Evaluations("a")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != whenlua.EvalKeep {
		t.Fatalf("%d evaluations kept, want %d", len(evs), whenlua.EvalKeep)
	}
	for i, e := range evs {
		want := uint64(whenlua.EvalKeep + 3 - i)
		if e.Seq != want || e.Serial != want || !e.Time.Equal(at(time.Duration(want)*time.Second)) || e.Result != (want%2 == 0) || e.Job != "a" {
			t.Errorf("evaluation %d: %+v, want seq %d", i, e, want)
		}
	}
	if evs, err := s.Evaluations("nobody"); err != nil || len(evs) != 0 {
		t.Errorf("a job never evaluated: %v, %v", evs, err)
	}
	seqs, err := s.EvalSeqs()
	if err != nil || len(seqs) != 2 || seqs["a"] != whenlua.EvalKeep+3 || seqs["ab"] != 1 {
		t.Errorf("seqs %v, %v", seqs, err)
	}
}

func dropEvaluations(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	names := make([]string, 0, 250)
	var b whenlua.Batch
	for i := range 250 {
		name := fmt.Sprintf("job%03d", i)
		names = append(names, name)
		for seq := uint64(1); seq <= whenlua.EvalKeep+2; seq++ {
			b.Evals = append(b.Evals, whenlua.Evaluation{Job: name, Seq: seq, Time: at(time.Duration(seq) * time.Second)})
		}
		if len(b.Evals) > 1000 {
			commit(t, s, &b)
			b = whenlua.Batch{}
		}
	}
	commit(t, s, &b)
	if err := s.DropEvaluations(names[:249]); err != nil {
		t.Fatal(err)
	}
	s = h.Reopen(t, s)
	seqs, err := s.EvalSeqs()
	if err != nil || len(seqs) != 1 || seqs[names[249]] != whenlua.EvalKeep+2 {
		t.Fatalf("EvalSeqs after the drop = %v, %v, want only %s at %d", seqs, err, names[249], whenlua.EvalKeep+2)
	}
	if evs, err := s.Evaluations(names[0]); err != nil || len(evs) != 0 {
		t.Fatalf("evaluations of a dropped job: %v, %v", evs, err)
	}
	if evs, err := s.Evaluations(names[249]); err != nil || len(evs) != whenlua.EvalKeep {
		t.Fatalf("evaluations of the job kept: %d, %v, want %d", len(evs), err, whenlua.EvalKeep)
	}
}

func marksAndCommits(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	m1 := whenlua.SetMark{Set: 1, Queued: true}
	m2 := whenlua.SetMark{Set: 2, Rounds: 1, Whisper: true}
	commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{
		{Name: "x", Value: whenlua.Int(1), Mark: m1}, {Name: "y", Value: whenlua.Int(1), Mark: m2},
	}})
	commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(2)}}})
	s = h.Reopen(t, s)
	x, _ := s.History("x", 0)
	y, _ := s.History("y", 0)
	if len(x) != 2 || len(y) != 1 {
		t.Fatalf("x %+v, y %+v", x, y)
	}
	if x[1].Mark != m1 || y[0].Mark != m2 || x[0].Mark != (whenlua.SetMark{}) {
		t.Errorf("marks %+v %+v %+v", x[1].Mark, y[0].Mark, x[0].Mark)
	}
	if x[1].Commit == 0 || x[1].Commit != y[0].Commit || x[0].Commit <= x[1].Commit {
		t.Errorf("commits: first %d and %d, then %d", x[1].Commit, y[0].Commit, x[0].Commit)
	}
}

func commit(t testing.TB, s whenlua.Store, b *whenlua.Batch) {
	t.Helper()
	if err := s.Commit(b); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// at is a fixed instant plus d, for versions with known times.
func at(d time.Duration) time.Time {
	return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Add(d)
}

func run(serial uint64, job string, state whenlua.RunState) whenlua.Run {
	return whenlua.Run{
		Serial: serial, Job: job, File: "/jobs/" + job + ".lua", Trigger: "when", State: state,
		Start: at(time.Duration(serial) * time.Second), PID: 100 + int(serial), Code: -1,
	}
}

func historyLen(t testing.TB, s whenlua.Store, name string) int {
	t.Helper()
	h, err := s.History(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(h)
}

func runsLen(t testing.TB, s whenlua.Store) int {
	t.Helper()
	r, err := s.Runs("", 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(r)
}

// assertEmpty checks that nothing at all is stored.
func assertEmpty(t *testing.T, s whenlua.Store) {
	t.Helper()
	vars, err := s.Vars()
	if err != nil || len(vars) != 0 {
		t.Errorf("vars: %d, %v", len(vars), err)
	}
	for _, name := range []string{"a", "b"} {
		if h, err := s.History(name, 0); err != nil || len(h) != 0 {
			t.Errorf("history of %s: %d, %v", name, len(h), err)
		}
	}
	if st, err := s.JobStates(); err != nil || len(st) != 0 {
		t.Errorf("job states: %d, %v", len(st), err)
	}
	if runs, err := s.Runs("", 0); err != nil || len(runs) != 0 {
		t.Errorf("runs: %d, %v", len(runs), err)
	}
	if n, err := s.Serial(); err != nil || n != 0 {
		t.Errorf("serial: %d, %v", n, err)
	}
}

// NaN and the infinities are refused, and nothing of their batch stored.
func nonFiniteFloats(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		b := &whenlua.Batch{Vars: []whenlua.VarChange{
			{Name: "ok", Value: whenlua.Int(1), Origin: whenlua.OriginCLI},
			{Name: "f", Value: whenlua.Float(f), Origin: whenlua.OriginCLI},
		}}
		if err := s.Commit(b); err == nil {
			t.Errorf("a commit of %v succeeded", f)
		}
	}
	if vars, err := s.Vars(); err != nil || len(vars) != 0 {
		t.Errorf("refused commits stored %v, %v", vars, err)
	}
}

func valuesRoundTrip(t *testing.T, h Harness) {
	big := strings.Repeat("x", whenlua.MaxValueLen)
	cases := map[string]whenlua.Value{
		"empty_string":    whenlua.String(""),
		"plain_string":    whenlua.String("hello, world"),
		"binary_string":   whenlua.String("a\x01b\xff"),
		"string_of_64KiB": whenlua.String(big),
		"zero":            whenlua.Int(0),
		"negative_int":    whenlua.Int(-42),
		"min_int":         whenlua.Int(math.MinInt64),
		"max_int":         whenlua.Int(math.MaxInt64),
		"float":           whenlua.Float(3.25),
		"negative_zero":   whenlua.Float(math.Copysign(0, -1)),
		"true":            whenlua.Bool(true),
		"false":           whenlua.Bool(false),
	}
	s := h.Open(t, Options{})
	b := &whenlua.Batch{}
	for name, v := range cases {
		b.Vars = append(b.Vars, whenlua.VarChange{Name: name, Value: v, Origin: whenlua.OriginCLI})
	}
	commit(t, s, b)
	check := func(t *testing.T, s whenlua.Store) {
		vars, err := s.Vars()
		if err != nil {
			t.Fatal(err)
		}
		if len(vars) != len(cases) {
			t.Errorf("got %d variables, want %d", len(vars), len(cases))
		}
		for name, want := range cases {
			got, ok := vars[name]
			if !ok || !got.Equal(want) {
				t.Errorf("%s: got %#v, want %#v", name, got, want)
			}
			if want.T == whenlua.TypeFloat && math.Signbit(got.F) != math.Signbit(want.F) {
				t.Errorf("%s: sign bit lost", name)
			}
			hist, err := s.History(name, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 1 || !hist[0].Value.Equal(want) || hist[0].Origin != whenlua.OriginCLI {
				t.Errorf("%s: history %#v", name, hist)
			}
			if want.T == whenlua.TypeFloat && math.Signbit(hist[0].Value.F) != math.Signbit(want.F) {
				t.Errorf("%s: sign bit lost in the history", name)
			}
		}
	}
	t.Run("after commit", func(t *testing.T) { check(t, s) })
	s = h.Reopen(t, s)
	t.Run("after close and open", func(t *testing.T) { check(t, s) })
}

func unset(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(1), Origin: "cli", Time: at(0)}}})
	commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Nil, Origin: "cli", Time: at(1)}}})
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := vars["x"]; ok {
		t.Errorf("x still set: %v", vars)
	}
	hist, err := s.History("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || !hist[0].Value.IsNil() || !hist[1].Value.Equal(whenlua.Int(1)) {
		t.Fatalf("history %#v", hist)
	}
	if !hist[0].Time.Equal(at(1)) || !hist[1].Time.Equal(at(0)) {
		t.Errorf("times %v %v", hist[0].Time, hist[1].Time)
	}
}

func historyUnknown(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "ab", Value: whenlua.Int(1)}}})
	// "a" is a prefix of "ab": its history must not include ab's.
	if hist, err := s.History("a", 0); err != nil || len(hist) != 0 {
		t.Fatalf("history of a: %v, %v", hist, err)
	}
}

func jobStates(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	states := map[string]*whenlua.JobState{
		"fresh":   {Cond: "x > 1"},
		"fired":   {Cond: "changes(\"y\")", Result: true, Evaluated: true, Snapshot: map[string]whenlua.Value{"y": whenlua.String("v"), "n": whenlua.Int(-3), "gone": whenlua.Nil}},
		"empty":   {Cond: "", Evaluated: true, Snapshot: map[string]whenlua.Value{}},
		"to.drop": {Cond: "z"},
	}
	commit(t, s, &whenlua.Batch{JobStates: states})
	commit(t, s, &whenlua.Batch{JobStates: map[string]*whenlua.JobState{"to.drop": nil}})
	delete(states, "to.drop")
	check := func(s whenlua.Store) {
		got, err := s.JobStates()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(states) {
			t.Fatalf("got %d states: %v", len(got), got)
		}
		for job, want := range states {
			g := got[job]
			if g.Cond != want.Cond || g.Result != want.Result || g.Evaluated != want.Evaluated ||
				(g.Snapshot == nil) != (want.Snapshot == nil) || len(g.Snapshot) != len(want.Snapshot) {
				t.Errorf("%s: got %#v, want %#v", job, g, *want)
			}
			for n, v := range want.Snapshot {
				if gv, ok := g.Snapshot[n]; !ok || !gv.Equal(v) {
					t.Errorf("%s: snapshot %s = %#v, want %#v", job, n, gv, v)
				}
			}
		}
	}
	check(s)
	check(h.Reopen(t, s))
}

func pendingHold(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	since := time.Date(2026, 12, 1, 12, 0, 0, 123, time.UTC)
	commit(t, s, &whenlua.Batch{JobStates: map[string]*whenlua.JobState{
		"held":  {Cond: "load > 4", Result: true, Evaluated: true, Snapshot: map[string]whenlua.Value{"load": whenlua.Float(5.5)}, PendingSince: since},
		"plain": {Cond: "load > 4", Evaluated: true},
	}})
	got, err := h.Reopen(t, s).JobStates()
	if err != nil {
		t.Fatal(err)
	}
	if g := got["held"]; !g.PendingSince.Equal(since) || !g.Result || g.Snapshot["load"] != whenlua.Float(5.5) {
		t.Errorf("held: %+v", g)
	}
	if g := got["plain"]; !g.PendingSince.IsZero() {
		t.Errorf("plain: %+v", g)
	}
}

func serial(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	if n, err := s.Serial(); err != nil || n != 0 {
		t.Fatalf("serial %d, %v", n, err)
	}
	commit(t, s, &whenlua.Batch{Serial: 41})
	commit(t, s, &whenlua.Batch{Serial: 42})
	commit(t, s, &whenlua.Batch{}) // a zero Serial leaves the counter alone
	s = h.Reopen(t, s)
	if n, err := s.Serial(); err != nil || n != 42 {
		t.Fatalf("serial %d, %v", n, err)
	}
}

func afterClose(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	errs := map[string]error{"commit": s.Commit(&whenlua.Batch{Serial: 1}), "trim": s.Trim()}
	_, errs["vars"] = s.Vars()
	_, errs["history"] = s.History("x", 0)
	_, errs["job states"] = s.JobStates()
	_, errs["serial"] = s.Serial()
	_, errs["run"] = s.Run(1)
	_, errs["runs"] = s.Runs("", 0)
	_, errs["running runs"] = s.RunningRuns()
	for op, err := range errs {
		if !errors.Is(err, whenlua.ErrStoreClosed) {
			t.Errorf("%s after close: %v", op, err)
		}
	}
}

func failedCommit(t *testing.T, h Harness) {
	cases := []struct {
		name  string
		batch *whenlua.Batch
	}{
		{"an invalid variable name after valid ones", &whenlua.Batch{
			Vars:   []whenlua.VarChange{{Name: "a", Value: whenlua.Int(1)}, {Name: "no-dash", Value: whenlua.Int(2)}},
			Serial: 3,
		}},
		{"a value over 64 KiB", &whenlua.Batch{
			Vars: []whenlua.VarChange{{Name: "a", Value: whenlua.Int(1)}, {Name: "b", Value: whenlua.String(strings.Repeat("x", whenlua.MaxValueLen+1))}},
		}},
		{"a run with serial 0", &whenlua.Batch{
			Vars: []whenlua.VarChange{{Name: "a", Value: whenlua.Int(1)}},
			Runs: []whenlua.Run{{Serial: 1, Job: "j", State: whenlua.RunDone}, {Job: "j"}},
		}},
		{"an empty job name", &whenlua.Batch{
			Vars:      []whenlua.VarChange{{Name: "a", Value: whenlua.Int(1)}},
			JobStates: map[string]*whenlua.JobState{"ok": {}, "": {}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := h.Open(t, Options{})
			err := s.Commit(c.batch)
			if !errors.Is(err, whenlua.ErrInvalid) {
				t.Fatalf("got %v, want %v", err, whenlua.ErrInvalid)
			}
			assertEmpty(t, s)
			assertEmpty(t, h.Reopen(t, s))
		})
	}
}

// bigBatch is a group commit beyond one etcd transaction's 128
// operations and 1.5 MiB: 256 variables (16 of them 64 KiB), 256 job
// states and 64 runs with output, stored whole.
func bigBatch(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	b := &whenlua.Batch{JobStates: map[string]*whenlua.JobState{}, Serial: 64}
	for i := range 256 {
		v := whenlua.Int(int64(i))
		if i%16 == 0 {
			v = whenlua.String(strings.Repeat(fmt.Sprint(i%10), whenlua.MaxValueLen))
		}
		b.Vars = append(b.Vars, whenlua.VarChange{Name: fmt.Sprintf("v%03d", i), Value: v, Origin: "cli"})
		b.JobStates[fmt.Sprintf("jobs.%03d", i)] = &whenlua.JobState{Cond: "changes(\"x\")", Evaluated: true, Result: i%2 == 0,
			Snapshot: map[string]whenlua.Value{"x": whenlua.Int(int64(i))}}
	}
	for i := uint64(1); i <= 64; i++ {
		r := run(i, "j", whenlua.RunDone)
		r.Output = []byte(strings.Repeat("o", 1000))
		b.Runs = append(b.Runs, r)
	}
	commit(t, s, b)
	check := func(when string, s whenlua.Store) {
		vars, err := s.Vars()
		if err != nil || len(vars) != 256 || vars["v255"].I != 255 || len(vars["v240"].S) != whenlua.MaxValueLen {
			t.Fatalf("%s: %d vars, %v", when, len(vars), err)
		}
		if n := historyLen(t, s, "v100"); n != 1 {
			t.Errorf("%s: history of v100: %d versions", when, n)
		}
		st, err := s.JobStates()
		if err != nil || len(st) != 256 || st["jobs.255"].Snapshot["x"].I != 255 {
			t.Fatalf("%s: %d job states, %v", when, len(st), err)
		}
		if n := runsLen(t, s); n != 64 {
			t.Errorf("%s: %d runs", when, n)
		}
		if r, err := s.Run(33); err != nil || len(r.Output) != 1000 {
			t.Errorf("%s: run 33: %v", when, err)
		}
		if n, _ := s.Serial(); n != 64 {
			t.Errorf("%s: serial %d", when, n)
		}
	}
	check("after commit", s)
	// A second one over the first: every variable gets its second version.
	for i := range b.Vars {
		b.Vars[i].Value = whenlua.Int(int64(1000 + i))
	}
	commit(t, s, b)
	s = h.Reopen(t, s)
	if hist, err := s.History("v017", 0); err != nil || len(hist) != 2 || hist[0].Value.I != 1017 || hist[1].Value.I != 17 {
		t.Errorf("history of v017: %+v, %v", hist, err)
	}
	if vars, _ := s.Vars(); vars["v240"].I != 1240 {
		t.Errorf("v240 = %v", vars["v240"])
	}
}

func versionsInOrder(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	same := at(0)
	b := &whenlua.Batch{}
	for i := range 50 {
		b.Vars = append(b.Vars, whenlua.VarChange{Name: "x", Value: whenlua.Int(int64(i)), Origin: fmt.Sprint("o", i), Time: same})
	}
	commit(t, s, b)
	// A later batch at the very same nanosecond adds versions, too.
	commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.String("last"), Time: same}}})
	hist, err := s.History("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 51 || hist[0].Value.S != "last" {
		t.Fatalf("got %d versions, newest %#v", len(hist), hist[0])
	}
	for i, v := range hist[1:] {
		if want := int64(49 - i); v.Value.I != want || v.Origin != fmt.Sprint("o", want) || !v.Time.Equal(same) {
			t.Errorf("version %d: %#v, want %d", i+1, v, want)
		}
	}
	if vars, _ := s.Vars(); vars["x"].S != "last" {
		t.Errorf("current %#v", vars["x"])
	}
}

func historyNewestFirst(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	for i := range 10 {
		commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(int64(i)), Time: at(time.Duration(i) * time.Second)}}})
	}
	for _, n := range []int{-1, 0, 1, 3, 10, 20} {
		hist, err := s.History("x", n)
		if err != nil {
			t.Fatal(err)
		}
		want := min(10, n)
		if n <= 0 {
			want = 10
		}
		if len(hist) != want {
			t.Errorf("n=%d: %d versions", n, len(hist))
		}
		for i, v := range hist {
			if v.Value.I != int64(9-i) || !v.Time.Equal(at(time.Duration(9-i)*time.Second)) {
				t.Errorf("n=%d: version %d is %#v", n, i, v)
			}
		}
	}
}

func versionWithoutTime(t *testing.T, h Harness) {
	s := h.Open(t, Options{Now: func() time.Time { return at(time.Minute) }})
	commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(1)}}})
	if hist, _ := s.History("x", 0); len(hist) != 1 || !hist[0].Time.Equal(at(time.Minute)) {
		t.Errorf("history %+v", hist)
	}
}

// A clock stepped back an hour between two sets: the history still lists
// the versions in the order they were set, and retention deletes the one
// set first, not the one with the earliest time.
func clockSteppedBack(t *testing.T, h Harness) {
	s := h.Open(t, Options{HistoryKeep: 2})
	set := func(v int64, at time.Time) {
		commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(v), Origin: "cli", Time: at}}})
	}
	now := time.Now()
	set(1, now)
	set(2, now.Add(-time.Hour))
	set(3, now.Add(-time.Hour+time.Second))
	check := func(when string) {
		t.Helper()
		hist, err := s.History("x", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[0].Value.I != 3 || hist[1].Value.I != 2 {
			t.Fatalf("%s: history %+v, want versions 3 and 2, newest first", when, hist)
		}
		if !hist[1].Time.Equal(now.Add(-time.Hour)) || !hist[0].Time.Equal(now.Add(-time.Hour+time.Second)) {
			t.Errorf("%s: times %v, %v", when, hist[0].Time, hist[1].Time)
		}
	}
	check("after the sets")
	if err := s.Trim(); err != nil {
		t.Fatal(err)
	}
	check("after Trim")
	s = h.Reopen(t, s)
	check("after a restart")
}

// The bounds hold after every commit, not only after a maintenance pass.
func retentionAtEveryCommit(t *testing.T, h Harness) {
	s := h.Open(t, Options{HistoryKeep: 5, RunsKeep: 10})
	for i := range 200 {
		b := &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(int64(i))}}}
		r := run(uint64(i+1), "j", whenlua.RunDone)
		switch i {
		case 3:
			r.State = whenlua.RunRunning
		case 5:
			r.State = whenlua.RunQueued
		}
		b.Runs = []whenlua.Run{r}
		commit(t, s, b)
		if n := h.Keys(t, s, "history/x"); n > 5 {
			t.Fatalf("after commit %d: %d versions stored, keep is 5", i, n)
		}
		if n := h.Keys(t, s, "runs"); n > 10 {
			t.Fatalf("after commit %d: %d runs stored, keep is 10", i, n)
		}
	}
	hist, _ := s.History("x", 0)
	if len(hist) != 5 || hist[0].Value.I != 199 || hist[4].Value.I != 195 {
		t.Errorf("history %+v", hist)
	}
	runs, _ := s.Runs("", 0)
	if len(runs) != 10 || runs[0].Serial != 200 || runs[8].Serial != 6 || runs[9].Serial != 4 {
		t.Errorf("runs %v", runs)
	}
	// The count survives a restart.
	s = h.Reopen(t, s)
	commit(t, s, &whenlua.Batch{Runs: []whenlua.Run{run(201, "j", whenlua.RunDone)}})
	if n := h.Keys(t, s, "runs"); n != 10 {
		t.Errorf("%d runs after a restart and one more", n)
	}
}

// versions commits n versions of name, one per second from start.
func versions(t *testing.T, s whenlua.Store, name string, start time.Time, n int) {
	t.Helper()
	b := &whenlua.Batch{}
	for i := range n {
		b.Vars = append(b.Vars, whenlua.VarChange{Name: name, Value: whenlua.Int(int64(i)), Time: start.Add(time.Duration(i) * time.Second)})
	}
	commit(t, s, b)
}

func trimByCount(t *testing.T, h Harness) {
	s := h.Open(t, Options{HistoryKeep: 5})
	versions(t, s, "a", at(0), 20)
	versions(t, s, "ab", at(0), 3)
	versions(t, s, "b", at(0), 5)
	if err := s.Trim(); err != nil {
		t.Fatal(err)
	}
	hist, _ := s.History("a", 0)
	if len(hist) != 5 || hist[0].Value.I != 19 || hist[4].Value.I != 15 {
		t.Errorf("a: %#v", hist)
	}
	if n := historyLen(t, s, "ab"); n != 3 {
		t.Errorf("ab: %d versions", n)
	}
	if n := historyLen(t, s, "b"); n != 5 {
		t.Errorf("b: %d versions", n)
	}
	vars, _ := s.Vars()
	if vars["a"].I != 19 || vars["ab"].I != 2 || vars["b"].I != 4 {
		t.Errorf("current values changed: %v", vars)
	}
}

func trimByAge(t *testing.T, h Harness) {
	s := h.Open(t, Options{HistoryMaxAge: time.Hour})
	now := time.Now()
	versions(t, s, "old", now.Add(-48*time.Hour), 10)              // all old
	versions(t, s, "mixed", now.Add(-time.Hour-5*time.Second), 10) // 5 older than an hour
	commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "unset", Value: whenlua.Int(1), Time: now.Add(-3 * time.Hour)}, {Name: "unset", Value: whenlua.Nil, Time: now.Add(-2 * time.Hour)}}})
	if err := s.Trim(); err != nil {
		t.Fatal(err)
	}
	hist, _ := s.History("old", 0)
	if len(hist) != 1 || hist[0].Value.I != 9 {
		t.Errorf("old: %#v", hist)
	}
	if n := historyLen(t, s, "mixed"); n < 4 || n > 5 {
		t.Errorf("mixed: %d versions, want the 5 younger than an hour", n)
	}
	hist, _ = s.History("unset", 0)
	if len(hist) != 1 || !hist[0].Value.IsNil() {
		t.Errorf("unset: %#v", hist)
	}
	vars, _ := s.Vars()
	if vars["old"].I != 9 || vars["mixed"].I != 9 {
		t.Errorf("current values changed: %v", vars)
	}
	if _, ok := vars["unset"]; ok {
		t.Errorf("unset came back")
	}
	// Later commits build on the trimmed history.
	commit(t, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "old", Value: whenlua.Int(10)}}})
	if hist, _ := s.History("old", 0); len(hist) != 2 || hist[0].Value.I != 10 || hist[1].Value.I != 9 {
		t.Errorf("old after one more: %#v", hist)
	}
}

func runRoundTrip(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	r := run(5, "ci", whenlua.RunRunning)
	commit(t, s, &whenlua.Batch{Runs: []whenlua.Run{r}, Serial: 5})
	r.State, r.End, r.Code, r.Signal, r.Error = whenlua.RunDone, r.Start.Add(time.Minute), 0, "", ""
	r.Output, r.OutputSize = []byte("line 1\nline 2\n"), 14
	commit(t, s, &whenlua.Batch{Runs: []whenlua.Run{r}})
	s = h.Reopen(t, s)
	got, err := s.Run(5)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != whenlua.RunDone || string(got.Output) != string(r.Output) || got.OutputSize != 14 ||
		!got.Start.Equal(r.Start) || !got.End.Equal(r.End) || got.Job != "ci" || got.PID != r.PID {
		t.Errorf("got %#v", got)
	}
	list, err := s.Runs("", 0)
	if err != nil || len(list) != 1 {
		t.Fatal(list, err)
	}
	if list[0].Output != nil || list[0].OutputSize != 14 {
		t.Errorf("a listing carries output: %#v", list[0])
	}
	// An empty output deletes the stored one.
	r.Output = nil
	commit(t, s, &whenlua.Batch{Runs: []whenlua.Run{r}})
	if got, err := s.Run(5); err != nil || got.Output != nil {
		t.Errorf("output after an empty one: %q, %v", got.Output, err)
	}
}

func unknownRun(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	if _, err := s.Run(99); !errors.Is(err, whenlua.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
}

func runsListing(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	b := &whenlua.Batch{}
	for i := uint64(1); i <= 300; i++ { // crosses the 255/256 byte boundary of a binary key
		b.Runs = append(b.Runs, run(i, []string{"a", "b", "c"}[i%3], whenlua.RunDone))
	}
	commit(t, s, b)
	cases := []struct {
		job       string
		n         int
		wantLen   int
		wantFirst uint64
	}{
		{"", 0, 300, 300},
		{"", 5, 5, 300},
		{"a", 0, 100, 300},
		{"b", 0, 100, 298},
		{"b", 2, 2, 298},
		{"nobody", 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("job %q n %d", c.job, c.n), func(t *testing.T) {
			runs, err := s.Runs(c.job, c.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != c.wantLen {
				t.Fatalf("%d runs", len(runs))
			}
			for i, r := range runs {
				if c.job != "" && r.Job != c.job {
					t.Errorf("run %d of job %s", r.Serial, r.Job)
				}
				if i == 0 && r.Serial != c.wantFirst {
					t.Errorf("first %d, want %d", r.Serial, c.wantFirst)
				}
				if i > 0 && r.Serial >= runs[i-1].Serial {
					t.Errorf("serial %d after %d", r.Serial, runs[i-1].Serial)
				}
			}
		})
	}
}

func runningRuns(t *testing.T, h Harness) {
	s := h.Open(t, Options{})
	commit(t, s, &whenlua.Batch{Runs: []whenlua.Run{
		run(1, "a", whenlua.RunDone), run(2, "a", whenlua.RunRunning), run(3, "b", whenlua.RunRefused),
		run(4, "b", whenlua.RunRunning), run(5, "c", whenlua.RunLost), run(6, "c", whenlua.RunQueued),
	}})
	got, err := s.RunningRuns()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Serial != 6 || got[1].Serial != 4 || got[2].Serial != 2 {
		t.Fatalf("got %#v", got)
	}
	for i := range got {
		got[i].State, got[i].Error = whenlua.RunLost, "daemon died"
	}
	commit(t, s, &whenlua.Batch{Runs: got})
	if got, err := s.RunningRuns(); err != nil || len(got) != 0 {
		t.Fatalf("still running: %v, %v", got, err)
	}
}

func trimRuns(t *testing.T, h Harness) {
	s := h.Open(t, Options{RunsKeep: 10})
	b := &whenlua.Batch{}
	for i := uint64(1); i <= 30; i++ {
		r := run(i, "j", whenlua.RunDone)
		if i == 2 || i == 7 {
			r.State = whenlua.RunRunning
		}
		r.Output = []byte("out")
		b.Runs = append(b.Runs, r)
	}
	commit(t, s, b)
	if err := s.Trim(); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs("", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, r := range runs {
		got = append(got, r.Serial)
	}
	// Ten records in all: the running ones count, but are never the ones to go.
	want := []uint64{30, 29, 28, 27, 26, 25, 24, 23, 7, 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	if r, err := s.Run(23); err != nil || string(r.Output) != "out" {
		t.Errorf("run 23: %v, %v", r, err)
	}
	// The output of a trimmed run went with it.
	if r, err := s.Run(22); !errors.Is(err, whenlua.ErrNotFound) || r.Output != nil {
		t.Errorf("run 22: %q, %v", r.Output, err)
	}
	if n := h.Keys(t, s, "outputs"); n != 10 {
		t.Errorf("%d outputs left", n)
	}
}
