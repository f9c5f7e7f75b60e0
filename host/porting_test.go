package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// Tests of the rules where whenlua follows whenjobs closely (docs/jobs.md,
// "Porting whenjobs files").

func TestReloadedIsTrueInEveryPassOfTheFixpointAfterALoad(t *testing.T) {
	// b must not fire at load whether or not another job of its file
	// became due there and made the fixpoint take a second pass.
	for _, tc := range []struct{ name, src string }{
		{"alone", `when("rx == '1' and not reloaded()", "true", {name="b"})`},
		{"with a job that fires at load", `when("reloaded()", "true", {name="a"})
when("rx == '1' and not reloaded()", "true", {name="b"})`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPaths(t, t.TempDir())
			te := openTestEngine(t, p, NewFakeClock(testEpoch))
			te.set("rx", "1")
			writeFile(t, p.JobsDir+"/j.lua", tc.src)
			te.reload()
			te.waitIdle()
			if n := len(te.runs("b")); n != 0 {
				t.Fatalf("b ran %d times at load, want 0", n)
			}
			// After the load, b is an ordinary edge: it stays true while rx
			// stays 1 (its result at load was false, so the next
			// evaluation makes it due once).
			if got := te.set("rx", "1"); countOf(got, "b") != 1 {
				t.Fatalf("rx=1 after the load triggered %v, want b", got)
			}
			te.waitIdle()
		})
	}
}

func TestAConditionThatRaisesKeepsItsPreviousSnapshotAndResult(t *testing.T) {
	for _, tc := range []struct {
		name, cond string
		values     []any
	}{
		// 7 fires; abc raises (a string compared with a number) and keeps
		// the result true; 8 is then no rising edge.
		{"a level condition", "w >= 5", []any{7, "abc", 8}},
		// 1 fires; abc raises and keeps the snapshot k=1; 1 is then no change.
		{"changes", "changes('w') and w >= 0", []any{1, "abc", 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTestEngine(t, map[string]string{"j.lua": `when("` + tc.cond + `", "true", {name="j"})`})
			n := 0
			for _, v := range tc.values {
				n += countOf(te.set("w", v), "j")
			}
			if n != 1 {
				t.Fatalf("runs for w = %v: %d, want 1", tc.values, n)
			}
			if s := te.status(); len(s.CondErrors) != 0 {
				t.Fatalf("condition errors after the last set: %q, want none", s.CondErrors)
			}
			te.waitIdle()
		})
	}
}

func TestDefaultNamesRunAndListInTheirNumbersOrder(t *testing.T) {
	src := strings.Repeat(`when("go == 1", "true")`+"\n", 11)
	te := newTestEngine(t, map[string]string{"o.lua": src})
	var want []string
	for i := 1; i <= 11; i++ {
		want = append(want, fmt.Sprintf("o.%d", i))
	}
	if got := te.set("go", 1); !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	te.waitIdle()
	infos, err := te.Names(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ji := range infos {
		names = append(names, ji.Name)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
}

func TestARemovedFileLeavesStatusAtOnceEvenWhileItsRunGoesOn(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	te := newTestEngine(t, map[string]string{
		"j.lua":    `when("x == 1", "` + blockingScript(gate) + `", {name="j"})`,
		"keep.lua": `when("false", "true", {name="k"})`,
	})
	te.set("x", 1)
	if err := os.Remove(filepath.Join(te.paths.JobsDir, "j.lua")); err != nil {
		t.Fatal(err)
	}
	te.reload()
	if f, ok := te.fileStatusOf("j.lua"); ok {
		t.Errorf("status after the removal still lists j.lua: %+v", f)
	}
	if _, ok := te.fileStatusOf("keep.lua"); !ok {
		t.Errorf("status lost keep.lua")
	}
	if s := te.status(); s.Running != 1 {
		t.Errorf("running = %d, want j's run, still going", s.Running)
	}
	writeFile(t, gate, "")
	te.waitIdle()
	if n := len(te.runs("j")); n != 1 {
		t.Fatalf("runs of the removed file's job = %d, want 1", n)
	}
}

func TestAPostHookReadsItsRunsOutput(t *testing.T) {
	te := newTestEngine(t, map[string]string{"p.lua": `
when("go == 1", "echo 'load: 0.42'; echo done", {name="p", post=function(r)
  set{load=tonumber(r:output():match("load: ([%d.]+)")), size=r.output_size}
end})`})
	te.set("go", 1)
	te.waitFor("the post hook", func() bool { return !te.get("load").IsNil() })
	te.waitIdle()
	if v := te.get("load"); !v.Equal(whenlua.Float(0.42)) {
		t.Fatalf("load = %v, want 0.42 parsed from the output", v)
	}
	if v := te.get("size"); !v.Equal(whenlua.Int(int64(len("load: 0.42\ndone\n")))) {
		t.Fatalf("size = %v", v)
	}
}

func TestConditionErrorsAreListedInJobNameOrder(t *testing.T) {
	src := strings.Repeat(`when("bad + 1 > 0", "true")`+"\n", 11)
	te := newTestEngine(t, map[string]string{"o.lua": src})
	te.set("bad", "x")
	var jobs []string
	for _, e := range te.status().CondErrors {
		job, _, _ := strings.Cut(e, ": ")
		jobs = append(jobs, job)
	}
	var want []string
	for i := 1; i <= 11; i++ {
		want = append(want, fmt.Sprintf("o.%d", i))
	}
	if !slices.Equal(jobs, want) {
		t.Fatalf("condition errors of %v, want %v", jobs, want)
	}
}
