package host

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// A failing run is tried again after delay, delay*backoff, ... until the
// attempts are used up; each attempt has its own serial and record linked
// to the first, and post sees attempt and final.
func TestRetryTriesAFailedRunAgainWithBackoff(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	te, clock := clockedEngine(t, "r.lua", `
when("go == 1", "exit 3", { name = "flaky", retry = { attempts = 3, delay = "30s", backoff = 2 },
  post = function(r) set("final_" .. r.attempt, r.final) end })
when("go == 1", "true", { name = "fine", retry = { attempts = 3 } })
when("go == 1", "exit 1", { name = "refused", pre = function() return false end, retry = { attempts = 3 } })
`, t0)
	te.set("go", 1)
	te.waitFor("the first attempt", func() bool { return len(te.runs("flaky")) == 1 && len(te.runs("fine")) == 1 })
	te.waitIdle()
	if rs := te.status().Retries; len(rs) != 1 || rs[0].Job != "flaky" || rs[0].Attempt != 2 || !rs[0].At.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("status retries = %+v", rs)
	}

	for i, at := range []time.Time{t0.Add(30 * time.Second), t0.Add(90 * time.Second)} {
		te.waitFor("the retry timer", func() bool { return clock.Timers() > 0 })
		clock.Set(at.Add(-time.Nanosecond))
		te.waitIdle()
		if n := len(te.runs("flaky")); n != i+1 {
			t.Fatalf("before %v: %d attempts, want %d", at, n, i+1)
		}
		clock.Set(at)
		te.waitFor("the retry", func() bool { return len(te.runs("flaky")) == i+2 })
		te.waitIdle()
	}
	runs := te.runs("flaky")
	first := runs[0]
	for i, r := range runs {
		wantRetry := map[int]time.Time{0: t0.Add(30 * time.Second), 1: t0.Add(90 * time.Second)}[i]
		wantFirst := first.Serial
		if i == 0 {
			wantFirst = 0
		}
		if r.Attempt != i+1 || r.FirstSerial != wantFirst || !r.RetryAt.Equal(wantRetry) || r.Code != 3 {
			t.Errorf("attempt %d: %+v", i+1, r)
		}
		if i > 0 && (r.Trigger != "retry" || r.Serial <= runs[i-1].Serial) {
			t.Errorf("attempt %d: trigger %q serial %d, want a retry with a serial of its own", i+1, r.Trigger, r.Serial)
		}
	}
	for i, want := range []bool{false, false, true} {
		if got := te.get("final_" + string(rune('1'+i))); got != whenlua.Bool(want) {
			t.Errorf("post of attempt %d saw final %v, want %v", i+1, got, want)
		}
	}
	// No fourth attempt, and no retry of a success or of a refusal.
	if s := te.status(); len(s.Next) != 0 {
		t.Errorf("something is still scheduled: %+v", s.Next)
	}
	if n, m := len(te.runs("fine")), len(te.runs("refused")); n != 1 || m != 1 {
		t.Errorf("the succeeding job ran %d times, the refused one %d; want once each", n, m)
	}
	if r := te.runs("fine")[0]; r.Attempt != 1 || !r.RetryAt.IsZero() {
		t.Errorf("successful run: %+v", r)
	}
}

// one() treats a pending retry as a running instance.
func TestOneRefusesWhileARetryIsPending(t *testing.T) {
	te, clock := clockedEngine(t, "r.lua", `
when("go == 1", "exit 1", { name = "solo", pre = one(), retry = { attempts = 2, delay = "1m" } })
`, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	te.set("go", 1)
	te.waitFor("the first attempt", func() bool { return len(te.runs("solo")) == 1 })
	te.waitIdle()
	if _, err := te.Start(context.Background(), "solo"); err == nil || !strings.Contains(err.Error(), "serial 1 still running") {
		t.Errorf("start while a retry is pending: %v, want refused by one() naming serial 1", err)
	}
	te.waitFor("the retry timer", func() bool { return clock.Timers() > 0 })
	clock.Advance(time.Minute)
	te.waitFor("the retry", func() bool {
		for _, r := range te.runs("solo") {
			if r.Trigger == "retry" && r.State == whenlua.RunDone {
				return true
			}
		}
		return false
	})
}
