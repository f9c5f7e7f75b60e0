package host

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/whenlua/whenlua"
)

// Each test pins one rule of SPEC §4.

func TestChangesFiresOncePerRealChange(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"in a string condition", `when("changes('x')", "true", {name="c"})`},
		{"in a function condition", `when(function() return changes("x") end, "true", {name="c"})`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTestEngine(t, map[string]string{"j.lua": tc.src})
			n := 0
			for _, v := range []int{1, 2, 2, 3} {
				n += countOf(te.set("x", v), "c")
			}
			if n != 3 {
				t.Fatalf("runs for 1, 2, 2, 3 = %d, want 3", n)
			}
			te.waitIdle()
		})
	}
}

func TestLevelConditionFiresOnTheRisingEdgeOnly(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `when("x >= 6", "true", {name="hot"})`})
	var fired []int
	for _, v := range []int{5, 7, 8, 3, 9} {
		if countOf(te.set("x", v), "hot") > 0 {
			fired = append(fired, v)
		}
	}
	if !slices.Equal(fired, []int{7, 9}) {
		t.Fatalf("fired at %v, want [7 9]", fired)
	}
	te.waitIdle()
}

func TestIncreasesAndDecreasesCompareNumbersOnly(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `
when("increases('x')", "true", {name="up"})
when("decreases('x')", "true", {name="down"})`})
	steps := []struct {
		v        any
		up, down bool
	}{
		{1, false, false},     // prev is nil: not a number
		{2, true, false},      // 1 < 2
		{1.5, false, true},    // int to float still compares
		{"abc", false, false}, // a string is not a number
		{3, false, false},     // prev is a string
		{3, false, false},     // equal
		{-7, false, true},
	}
	for i, s := range steps {
		got := te.set("x", s.v)
		if up := countOf(got, "up") > 0; up != s.up {
			t.Errorf("step %d (x=%v): up fired %v, want %v", i, s.v, up, s.up)
		}
		if down := countOf(got, "down") > 0; down != s.down {
			t.Errorf("step %d (x=%v): down fired %v, want %v", i, s.v, down, s.down)
		}
	}
	te.waitIdle()
}

func TestPrevIsNilBeforeTheFirstEvaluation(t *testing.T) {
	// The load evaluation is the first: prev(x) is nil there even though x is set.
	for _, tc := range []struct {
		cond      string
		atLoad    int
		afterSet6 int
	}{
		{"prev('x') == nil", 1, 0},
		{"prev('x') == 5", 0, 1},
	} {
		t.Run(tc.cond, func(t *testing.T) {
			p := testPaths(t, t.TempDir())
			te := openTestEngine(t, p, NewFakeClock(testEpoch))
			te.set("x", 5)
			writeFile(t, p.JobsDir+"/j.lua", `when("`+tc.cond+`", "true", {name="j"})`)
			te.reload()
			te.waitIdle()
			if n := len(te.runs("j")); n != tc.atLoad {
				t.Errorf("runs at the first evaluation = %d, want %d", n, tc.atLoad)
			}
			if n := countOf(te.set("x", 6), "j"); n != tc.afterSet6 {
				t.Errorf("runs after x went 5 -> 6 = %d, want %d", n, tc.afterSet6)
			}
			te.waitIdle()
		})
	}
}

func TestReloadedIsTrueOnlyAtTheLoadEvaluation(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `when("reloaded()", "true", {name="r"})`})
	te.waitIdle()
	if n := len(te.runs("r")); n != 1 {
		t.Fatalf("runs after load = %d, want 1", n)
	}
	// A set of a variable the job does not read evaluates nothing; the
	// job has no dependencies, so nothing re-fires it.
	if got := te.set("x", 1); len(got) != 0 {
		t.Fatalf("set after load triggered %v", got)
	}
	// A rewrite with new content reloads the file: reloaded() again.
	writeFile(t, te.paths.JobsDir+"/j.lua", `when("reloaded()", "true", {name="r"}) -- edited`)
	te.reload()
	te.waitIdle()
	if n := len(te.runs("r")); n != 2 {
		t.Fatalf("runs after reload = %d, want 2", n)
	}
	// A daemon restart is a load too.
	te = te.restart()
	te.waitIdle()
	if n := len(te.runs("r")); n != 3 {
		t.Fatalf("runs after restart = %d, want 3", n)
	}
}

func TestWhisperStoresWithoutEvaluatingSoChangesFiresAtTheNextEvaluation(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `when("changes('a')", "true", {name="c"})`})
	if got := te.set("a", 0); countOf(got, "c") != 1 {
		t.Fatalf("set a=0 triggered %v", got)
	}
	if got := te.setMode(whenlua.ModeWhisper, "a", 1); len(got) != 0 {
		t.Fatalf("whisper triggered %v", got)
	}
	if v := te.get("a"); !v.Equal(whenlua.Int(1)) {
		t.Fatalf("whisper did not store: a = %v", v)
	}
	// The value does not change, but the job's snapshot still says 0.
	if got := te.set("a", 1); countOf(got, "c") != 1 {
		t.Fatalf("set a=1 after whisper a=1 triggered %v, want c (the gotcha)", got)
	}
	te.waitIdle()
}

func TestAnAtomicMultiSetIsSeenByOneEvaluation(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `
when("x == 1 and y == 1", "true", {name="both"})
when("changes('x') and changes('y')", "true", {name="together"})
when("x ~= y", "true", {name="differ"})`})
	got := te.set("x", 1, "y", 1)
	if countOf(got, "both") != 1 || countOf(got, "together") != 1 {
		t.Fatalf("set x=1 y=1 triggered %v, want both and together", got)
	}
	// Never seen apart: x ~= y was never true.
	if countOf(got, "differ") != 0 {
		t.Fatalf("an evaluation saw x and y apart: %v", got)
	}
	te.waitIdle()
}

func TestAShortCircuitedChangesStillMovesItsSnapshotOn(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"string condition", `when("a and changes('b')", "true", {name="j"})`},
		{"function condition", `when(function() return vars.a and changes("b") end, "true", {name="j"})`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTestEngine(t, map[string]string{"j.lua": tc.src})
			if got := te.set("b", 1); len(got) != 0 {
				t.Fatalf("b=1 while a is unset triggered %v", got)
			}
			// whenjobs: b's change was seen (a was false); a becoming true
			// does not make it a change again.
			if got := te.set("a", true); len(got) != 0 {
				t.Fatalf("a=true after b already changed triggered %v, want nothing", got)
			}
			if got := te.set("b", 2); countOf(got, "j") != 1 {
				t.Fatalf("b=2 while a is true triggered %v, want j", got)
			}
			te.waitIdle()
		})
	}
}

func TestTheFixpointReArmsChangesJobs(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `when("changes('x')", "true", {name="c"})`})
	te.set("x", 1)
	st, err := te.store.JobStates()
	if err != nil {
		t.Fatal(err)
	}
	// The second pass saw changes() false: the previous result is false,
	// so the next real change is an edge again.
	if s := st["c"]; s.Result || !s.Evaluated {
		t.Fatalf("state after firing = %+v, want evaluated and re-armed (result false)", s)
	}
	if got := te.set("x", 2); countOf(got, "c") != 1 {
		t.Fatalf("second change triggered %v", got)
	}
	te.waitIdle()
}

func TestDueJobsRunInNameOrder(t *testing.T) {
	te := newTestEngine(t, map[string]string{
		"z.lua": `when("go == 1", "true", {name="zeta"}) when("go == 1", "true", {name="alpha"})`,
		"a.lua": `when("go == 1", "true", {name="mid"})`,
	})
	got := te.set("go", 1)
	if !slices.Equal(got, []string{"alpha", "mid", "zeta"}) {
		t.Fatalf("order %v, want [alpha mid zeta]", got)
	}
	te.waitIdle()
	var serials []uint64
	for _, name := range got {
		serials = append(serials, te.runs(name)[0].Serial)
	}
	if !slices.IsSorted(serials) {
		t.Fatalf("serials %v not in name order", serials)
	}
}

func TestJOBSERIALIsConsumedWhenPreRefuses(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `
when("changes('x')", "true", {name="no", pre=function(info) return false end})
when("changes('x')", "true", {name="yes"})`})
	te.set("x", 1)
	te.waitIdle()
	no, yes := te.runs("no"), te.runs("yes")
	if len(no) != 1 || no[0].State != whenlua.RunRefused {
		t.Fatalf("refused run not recorded: %+v", no)
	}
	if len(yes) != 1 || yes[0].Serial != no[0].Serial+1 {
		t.Fatalf("serials: refused %d, next %+v; want consecutive", no[0].Serial, yes)
	}
	serial, _ := te.store.Serial()
	if serial != yes[0].Serial {
		t.Fatalf("stored serial %d, want %d", serial, yes[0].Serial)
	}
}

func TestARestartReFiresNothingAndChangesComparesWithTheValueBeforeIt(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `
when("x >= 6", "true", {name="level"})
when("changes('x')", "true", {name="c"})`})
	te.set("x", 7)
	te.waitIdle()
	te = te.restart()
	te.waitIdle()
	if n := len(te.runs("level")) + len(te.runs("c")); n != 2 {
		t.Fatalf("runs after restart = %d, want the 2 from before it", n)
	}
	if got := te.set("x", 7); len(got) != 0 {
		t.Fatalf("same value after restart triggered %v", got)
	}
	if got := te.set("x", 8); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("x 7 -> 8 after restart triggered %v, want [c]", got)
	}
	te.waitIdle()
}

func TestAConditionThatRaisesCountsAsFalseAndIsShown(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `
when(function() return vars.x + 1 > 0 end, "true", {name="bad"})
when("x == 'boom'", "true", {name="good"})`})
	got := te.set("x", "boom")
	if !slices.Equal(got, []string{"good"}) {
		t.Fatalf("triggered %v, want [good]", got)
	}
	s := te.status()
	if len(s.CondErrors) != 1 || !strings.HasPrefix(s.CondErrors[0], "bad: ") || !strings.Contains(s.CondErrors[0], "j.lua:2") {
		t.Fatalf("status condition errors = %q, want bad's error with j.lua:2", s.CondErrors)
	}
	te.waitIdle()
}

func TestTestModeChangesNothing(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `when("changes('x')", "true", {name="c"})`})
	te.set("x", 1)
	te.waitIdle()
	statesBefore, _ := te.store.JobStates()
	serialBefore, _ := te.store.Serial()
	histBefore, _ := te.History(context.Background(), "x", 0)
	for range 2 {
		if got := te.setMode(whenlua.ModeTest, "x", 2); !slices.Equal(got, []string{"c"}) {
			t.Fatalf("test x=2 = %v, want [c]", got)
		}
	}
	if v := te.get("x"); !v.Equal(whenlua.Int(1)) {
		t.Fatalf("x = %v after test, want 1", v)
	}
	statesAfter, _ := te.store.JobStates()
	serialAfter, _ := te.store.Serial()
	histAfter, _ := te.History(context.Background(), "x", 0)
	if serialAfter != serialBefore || len(histAfter) != len(histBefore) || !statesAfter["c"].Snapshot["x"].Equal(statesBefore["c"].Snapshot["x"]) {
		t.Fatalf("test changed the store: serial %d->%d, history %d->%d", serialBefore, serialAfter, len(histBefore), len(histAfter))
	}
	// The in-memory snapshot is intact too: a real set still fires.
	if got := te.set("x", 2); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("set x=2 after test = %v", got)
	}
	te.waitIdle()
}

func TestTestModeLeavesConditionErrorsAsTheyAre(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `when(function() return vars.x + 1 > 0 end, "true", {name="b"})`})
	te.set("x", "abc")
	if s := te.status(); len(s.CondErrors) != 1 {
		t.Fatalf("condition errors after x=abc: %q", s.CondErrors)
	}
	te.setMode(whenlua.ModeTest, "x", 5)
	if s := te.status(); len(s.CondErrors) != 1 {
		t.Fatalf("condition errors after test x=5: %q, want the real one kept", s.CondErrors)
	}
}

func TestTestReportsWhatTheSameSetTriggers(t *testing.T) {
	// test runs the settle of a set as a dry run: before each real set, a
	// test of the same values names exactly the jobs the set then makes
	// due, in the same order (edges, levels, holds, several files).
	te := newTestEngine(t, map[string]string{
		"a.lua": `when("changes('x')", "true", {name="zeta"}) when("x > 2", "true", {name="big"})`,
		"b.lua": `when("increases('x')", "true", {name="alpha"}) when("x > 2", "true", {name="held", hold="1h"})`,
	})
	for _, v := range []int{1, 1, 3, 5, 2, 4, 4} {
		tested := te.setMode(whenlua.ModeTest, "x", v)
		set := te.set("x", v)
		if !slices.Equal(tested, set) {
			t.Fatalf("x=%d: test said %v, the set triggered %v", v, tested, set)
		}
		te.waitIdle()
	}
	if s := te.status(); len(s.Pending) != 1 {
		t.Fatalf("pending holds %v, want only the real set's one", s.Pending)
	}
}

func TestAGroupOfSetsNeverOutgrowsOneCommit(t *testing.T) {
	te := newTestEngine(t, nil)
	var as []whenlua.Assignment
	for i := range 50 {
		as = append(as, whenlua.Assignment{Name: fmt.Sprintf("v%d", i), Value: whenlua.Int(1)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := te.Set(context.Background(), whenlua.SetRequest{Assignments: as})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a set of 50 variables among 400 concurrent ones: %v", err)
		}
	}
}
