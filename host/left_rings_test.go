package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// jobsFile declares n when-jobs named prefix1..prefixN.
func jobsFile(prefix string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "when(\"x == %d\", \"true\", { name = \"%s%d\" })\n", i, prefix, i)
	}
	return b.String()
}

// The evaluations of jobs that left are kept for the keepLeftRings newest
// to leave, not for every job that ever was: a file that generates or
// renames jobs used to leave a ring per name on disk and a sequence per
// name in memory, for good.
func TestTheEvaluationsOfJobsThatLeftAreBounded(t *testing.T) {
	p := testPaths(t, t.TempDir())
	const n = keepLeftRings + 30
	writeFile(t, p.JobsDir+"/gen.lua", jobsFile("g", n))
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	ctx := context.Background()
	if err := os.Remove(p.JobsDir + "/gen.lua"); err != nil {
		t.Fatal(err)
	}
	te.reload()

	kept := func() map[string]uint64 {
		t.Helper()
		seqs, err := te.store.EvalSeqs()
		if err != nil {
			t.Fatal(err)
		}
		return seqs
	}
	if got := len(kept()); got != keepLeftRings {
		t.Fatalf("%d jobs keep evaluations after %d left, want %d", got, n, keepLeftRings)
	}
	// The first to leave lost theirs; the last keep theirs.
	if _, err := te.Why(ctx, "g1"); !errors.Is(err, whenlua.ErrNotFound) {
		t.Errorf("why g1: %v, want not found", err)
	}
	rep, err := te.Why(ctx, fmt.Sprintf("g%d", n))
	if err != nil || rep.Loaded || len(rep.Evaluations) != 1 {
		t.Errorf("why g%d: %+v, %v; want its evaluation, not loaded", n, rep, err)
	}

	// A restart keeps the bound, and jobs that leave later push the
	// oldest out; a job loaded again is not one that left.
	te = te.restart()
	back := fmt.Sprintf("g%d", n)
	writeFile(t, p.JobsDir+"/more.lua", jobsFile("m", 10))
	writeFile(t, p.JobsDir+"/back.lua", fmt.Sprintf(`when("x == 0", "true", { name = %q })`, back))
	te.reload()
	if err := os.Remove(p.JobsDir + "/more.lua"); err != nil {
		t.Fatal(err)
	}
	te.reload()
	seqs := kept()
	if got := len(seqs); got != keepLeftRings+1 {
		t.Errorf("%d jobs keep evaluations, want %d that left and %s, loaded", got, keepLeftRings+1, back)
	}
	for _, name := range []string{"m1", "m10", back} {
		if _, ok := seqs[name]; !ok {
			t.Errorf("%s lost its evaluations", name)
		}
	}
}
