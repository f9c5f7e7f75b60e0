package persist

import (
	"testing"
)

// DropEvaluations deletes whole rings, of many jobs, and nothing else.
func TestDropEvaluationsDeletesTheRingsOfTheJobsNamed(t *testing.T) {
	s := openTest(t, Options{Dir: t.TempDir()})
	var b Batch
	names := make([]string, 0, 250)
	for i := range 250 {
		name := "job" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		names = append(names, name)
		for seq := uint64(1); seq <= 12; seq++ {
			e := sampleEval(seq)
			e.Job = name
			b.Evals = append(b.Evals, e)
		}
		if len(b.Evals) > 1000 {
			if err := s.Commit(&b); err != nil {
				t.Fatal(err)
			}
			b = Batch{}
		}
	}
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	if err := s.DropEvaluations(names[:249]); err != nil {
		t.Fatal(err)
	}
	seqs, err := s.EvalSeqs()
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 1 || seqs[names[249]] != 12 {
		t.Fatalf("EvalSeqs after the drop = %v, want only %s at 12", seqs, names[249])
	}
	if evals, err := s.Evaluations(names[0]); err != nil || len(evals) != 0 {
		t.Fatalf("evaluations of a dropped job: %v, %v", evals, err)
	}
}
