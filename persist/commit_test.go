package persist

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// bigBatch is 100 variables of 64 KiB and n job states with a snapshot each.
func bigBatch(tag string, n int) *Batch {
	b := &Batch{JobStates: make(map[string]*whenlua.JobState, n), Serial: 7}
	val := strings.Repeat(tag, whenlua.MaxValueLen/len(tag))
	for i := range 100 {
		b.Vars = append(b.Vars, VarChange{Name: fmt.Sprintf("big_%03d", i), Value: whenlua.String(val), Origin: "cli"})
	}
	for i := range n {
		b.JobStates[fmt.Sprintf("jobs.%05d", i)] = &whenlua.JobState{
			Cond: "changes(\"x\") and y > 3", Evaluated: true, Result: i%2 == 0,
			Snapshot: map[string]whenlua.Value{"x": whenlua.Int(int64(i)), "y": whenlua.Float(4.5)},
		}
	}
	return b
}

// assertEmpty checks that nothing at all is stored.
func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	vars, err := s.Vars()
	if err != nil || len(vars) != 0 {
		t.Errorf("vars: %d, %v", len(vars), err)
	}
	for _, name := range []string{"a", "big_000", "big_099"} {
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

func TestABigBatchCommitsAsOneTransaction(t *testing.T) {
	s := openTest(t, Options{})
	b := bigBatch("0123456789abcdef", 10000)
	start := time.Now()
	commit(t, s, b)
	t.Logf("100 x 64 KiB + 10,000 job states: %v", time.Since(start))
	s = reopen(t, s)
	vars, err := s.Vars()
	if err != nil || len(vars) != 100 || len(vars["big_042"].S) != whenlua.MaxValueLen {
		t.Fatalf("vars: %d, %v", len(vars), err)
	}
	st, err := s.JobStates()
	if err != nil || len(st) != 10000 || st["jobs.09999"].Snapshot["x"].I != 9999 {
		t.Fatalf("job states: %d, %v", len(st), err)
	}
	if n, _ := s.Serial(); n != 7 {
		t.Errorf("serial %d", n)
	}
}

func TestACommitThatFailsStoresNothing(t *testing.T) {
	cases := []struct {
		name  string
		batch *Batch
		want  error
	}{
		{"a batch too big for a transaction, after its variables", bigBatch("abcd", 20000), ErrTooBig},
		{"an invalid variable name after valid ones", &Batch{
			Vars:   []VarChange{{Name: "a", Value: whenlua.Int(1)}, {Name: "no-dash", Value: whenlua.Int(2)}},
			Serial: 3,
		}, whenlua.ErrInvalid},
		{"a value over 64 KiB", &Batch{
			Vars: []VarChange{{Name: "a", Value: whenlua.Int(1)}, {Name: "b", Value: whenlua.String(strings.Repeat("x", whenlua.MaxValueLen+1))}},
		}, whenlua.ErrInvalid},
		{"a run with serial 0", &Batch{
			Vars: []VarChange{{Name: "a", Value: whenlua.Int(1)}},
			Runs: []whenlua.Run{{Serial: 1, Job: "j", State: whenlua.RunDone}, {Job: "j"}},
		}, whenlua.ErrInvalid},
		{"an empty job name", &Batch{
			Vars:      []VarChange{{Name: "a", Value: whenlua.Int(1)}},
			JobStates: map[string]*whenlua.JobState{"ok": {}, "": {}},
		}, whenlua.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openTest(t, Options{})
			err := s.Commit(c.batch)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			t.Logf("error: %.200s", err)
			assertEmpty(t, s)
			assertEmpty(t, reopen(t, s))
		})
	}
}

func TestACommitToAClosedStoreFails(t *testing.T) {
	s := openTest(t, Options{})
	dir := s.opts.Dir
	s.Close()
	if err := s.Commit(&Batch{Vars: []VarChange{{Name: "a", Value: whenlua.Int(1)}}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
	assertEmpty(t, openTest(t, Options{Dir: dir}))
}

func TestAVersionWithoutTimeGetsTheCommitTime(t *testing.T) {
	s := openTest(t, Options{})
	before := time.Now()
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Bool(true)}}})
	h, err := s.History("x", 1)
	if err != nil || len(h) != 1 {
		t.Fatal(h, err)
	}
	if h[0].Time.Before(before) || h[0].Time.After(time.Now()) {
		t.Errorf("time %v not within the commit", h[0].Time)
	}
}
