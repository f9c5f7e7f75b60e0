package persist

import (
	"errors"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// NaN and the infinities are refused at every boundary (SPEC-facing docs say
// floats are finite); the store keeps that invariant too, and stores nothing
// of a batch that breaks it.
func TestNonFiniteFloatsAreNotStored(t *testing.T) {
	s := openTest(t, Options{})
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		b := &Batch{Vars: []VarChange{
			{Name: "ok", Value: whenlua.Int(1), Origin: whenlua.OriginCLI},
			{Name: "f", Value: whenlua.Float(f), Origin: whenlua.OriginCLI},
		}}
		if err := s.Commit(b); err == nil {
			t.Errorf("a commit of %v succeeded", f)
		}
	}
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) != 0 {
		t.Errorf("refused commits stored %v", vars)
	}
}

func TestValuesRoundTrip(t *testing.T) {
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
	s := openTest(t, Options{})
	b := &Batch{}
	for name, v := range cases {
		b.Vars = append(b.Vars, VarChange{Name: name, Value: v, Origin: whenlua.OriginCLI})
	}
	commit(t, s, b)

	check := func(t *testing.T, s *Store) {
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
			h, err := s.History(name, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != 1 || !h[0].Value.Equal(want) || h[0].Origin != whenlua.OriginCLI {
				t.Errorf("%s: history %#v", name, h)
			}
		}
	}
	t.Run("after commit", func(t *testing.T) { check(t, s) })
	s = reopen(t, s)
	t.Run("after close and open", func(t *testing.T) { check(t, s) })
}

func TestUnsetRemovesTheVariableAndRecordsANilVersion(t *testing.T) {
	s := openTest(t, Options{})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(1), Origin: "cli", Time: at(0)}}})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Nil, Origin: "cli", Time: at(1)}}})
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := vars["x"]; ok {
		t.Errorf("x still set: %v", vars)
	}
	h, err := s.History("x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || !h[0].Value.IsNil() || !h[1].Value.Equal(whenlua.Int(1)) {
		t.Fatalf("history %#v", h)
	}
	if !h[0].Time.Equal(at(1)) || !h[1].Time.Equal(at(0)) {
		t.Errorf("times %v %v", h[0].Time, h[1].Time)
	}
}

func TestHistoryOfAnUnknownNameIsEmpty(t *testing.T) {
	s := openTest(t, Options{})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "ab", Value: whenlua.Int(1)}}})
	// "a" is a prefix of "ab": its history must not include ab's.
	h, err := s.History("a", 0)
	if err != nil || len(h) != 0 {
		t.Fatalf("history of a: %v, %v", h, err)
	}
}

func TestJobStatesRoundTripAndDelete(t *testing.T) {
	s := openTest(t, Options{})
	states := map[string]*whenlua.JobState{
		"fresh":   {Cond: "x > 1"},
		"fired":   {Cond: "changes(\"y\")", Result: true, Evaluated: true, Snapshot: map[string]whenlua.Value{"y": whenlua.String("v"), "n": whenlua.Int(-3), "gone": whenlua.Nil}},
		"empty":   {Cond: "", Evaluated: true, Snapshot: map[string]whenlua.Value{}},
		"to.drop": {Cond: "z"},
	}
	commit(t, s, &Batch{JobStates: states})
	commit(t, s, &Batch{JobStates: map[string]*whenlua.JobState{"to.drop": nil}})
	delete(states, "to.drop")

	check := func(s *Store) {
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
	check(reopen(t, s))
}

func TestSerialIsZeroUntilWrittenAndSurvivesReopen(t *testing.T) {
	s := openTest(t, Options{})
	if n, err := s.Serial(); err != nil || n != 0 {
		t.Fatalf("serial %d, %v", n, err)
	}
	commit(t, s, &Batch{Serial: 41})
	commit(t, s, &Batch{Serial: 42})
	commit(t, s, &Batch{}) // a zero Serial leaves the counter alone
	s = reopen(t, s)
	if n, err := s.Serial(); err != nil || n != 42 {
		t.Fatalf("serial %d, %v", n, err)
	}
}

func TestOpenCreatesThePrivateDirectory(t *testing.T) {
	dir := t.TempDir() + "/state/db"
	openTest(t, Options{Dir: dir})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestASecondOpenOfTheSameDirectoryFails(t *testing.T) {
	s := openTest(t, Options{})
	if s2, err := Open(Options{Dir: s.opts.Dir, Logger: quietLogger, MaintainEvery: -1}); err == nil {
		s2.Close()
		t.Fatal("second open succeeded")
	}
}

func TestEveryMethodFailsAfterClose(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	errs := map[string]error{"commit": s.Commit(&Batch{Serial: 1}), "trim": s.Trim()}
	_, errs["vars"] = s.Vars()
	_, errs["history"] = s.History("x", 0)
	_, errs["job states"] = s.JobStates()
	_, errs["serial"] = s.Serial()
	_, errs["run"] = s.Run(1)
	_, errs["runs"] = s.Runs("", 0)
	_, errs["running runs"] = s.RunningRuns()
	for op, err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after close: %v", op, err)
		}
	}
}

// TestHeapAfterOpenIsSmall guards the badger tuning: with badger's defaults
// the heap is ~86 MiB right after open.
func TestHeapAfterOpenIsSmall(t *testing.T) {
	before := heapAlloc()
	s := openTest(t, Options{})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(1)}}})
	grew := heapAlloc() - before
	t.Logf("heap grew by %.1f MiB on open", float64(grew)/(1<<20))
	if grew > 32<<20 {
		t.Errorf("heap grew by %d MiB on open, want about 11", grew>>20)
	}
}

func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
