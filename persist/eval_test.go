package persist

import (
	"reflect"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

func sampleEval(seq uint64) whenlua.Evaluation {
	prev := whenlua.String("a\x00b")
	return whenlua.Evaluation{
		Job: "disk.alert", Seq: seq, Time: time.Unix(0, 1_700_000_000_123_456_789),
		Trigger: whenlua.Trigger{Kind: whenlua.TriggerSet, Origin: "job build post", Names: []string{"x", "y"}, Time: time.Unix(5, 0)},
		Cond:    true, Result: true, Reloaded: true,
		Values: []whenlua.ReadValue{
			{Name: "x", Value: whenlua.Int(7), Prev: &prev},
			{Name: "y", Value: whenlua.Nil},
		},
		Outcome: whenlua.OutcomeRefused, Serial: 12, Reason: "pre refused: one(): serial 11 still running",
		Scheduled: time.Unix(60, 0), CatchUp: true,
	}
}

func TestEvalCodecRoundTrips(t *testing.T) {
	for _, e := range []whenlua.Evaluation{
		sampleEval(3),
		{Job: "tick", Seq: 1, Time: time.Unix(1, 0), Trigger: whenlua.Trigger{Kind: whenlua.TriggerSchedule}, Outcome: whenlua.OutcomeStarted, Serial: 1},
	} {
		got, err := decodeEval(e.Job, encodeEval(e))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
	enc := encodeEval(sampleEval(3))
	for n := 0; n < len(enc); n++ {
		if _, err := decodeEval("j", enc[:n]); err == nil {
			t.Fatalf("a record cut to %d of %d bytes decoded", n, len(enc))
		}
	}
}

// TestEvaluationsKeepTheNewestTenAcrossReopen: 25 evaluations leave 10
// keys, newest first, and the newest sequence is found again after a
// reopen.
func TestEvaluationsKeepTheNewestTenAcrossReopen(t *testing.T) {
	s := openTest(t, Options{})
	for seq := uint64(1); seq <= 25; seq++ {
		commit(t, s, &Batch{Evals: []whenlua.Evaluation{sampleEval(seq), {Job: "other", Seq: seq, Outcome: whenlua.OutcomeFalse}}})
	}
	s = reopen(t, s)
	evals, err := s.Evaluations("disk.alert")
	if err != nil {
		t.Fatal(err)
	}
	if len(evals) != whenlua.EvalKeep || evals[0].Seq != 25 || evals[whenlua.EvalKeep-1].Seq != 16 {
		t.Fatalf("%d evaluations, seqs %d..%d", len(evals), evals[0].Seq, evals[len(evals)-1].Seq)
	}
	seqs, err := s.EvalSeqs()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seqs, map[string]uint64{"disk.alert": 25, "other": 25}) {
		t.Fatalf("EvalSeqs: %v", seqs)
	}
	if evals, err := s.Evaluations("disk"); err != nil || len(evals) != 0 {
		t.Fatalf("a job whose name prefixes another's: %v, %v", evals, err)
	}
}
