package persist

import (
	"bytes"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

func TestAJobStateKeepsItsPendingHold(t *testing.T) {
	since := time.Date(2026, 12, 1, 12, 0, 0, 123, time.UTC)
	st := &whenlua.JobState{Cond: "load > 4", Result: true, Evaluated: true,
		Snapshot: map[string]whenlua.Value{"load": whenlua.Float(5.5)}, PendingSince: since}
	got, err := decodeJobState(encodeJobState(st))
	if err != nil {
		t.Fatal(err)
	}
	if !got.PendingSince.Equal(since) || got.Cond != st.Cond || !got.Result || got.Snapshot["load"] != whenlua.Float(5.5) {
		t.Fatalf("decoded %+v", got)
	}
	// A state without a pending hold is stored as before the field existed.
	st.PendingSince = time.Time{}
	plain := encodeJobState(st)
	st.PendingSince = since
	if withPending := encodeJobState(st); !bytes.Equal(withPending[2:len(plain)], plain[2:]) || len(withPending) != len(plain)+8 {
		t.Fatalf("the pending time is not a suffix: %x vs %x", withPending, plain)
	}
	if got, err := decodeJobState(plain); err != nil || !got.PendingSince.IsZero() {
		t.Fatalf("plain state: %+v, %v", got, err)
	}
	if _, err := decodeJobState(encodeJobState(st)[:len(plain)+4]); err == nil {
		t.Fatal("a truncated pending time decoded")
	}
}
