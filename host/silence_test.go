package host

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// silenceJobs has a job expected to succeed every 10 minutes, whose
// on_silence hook counts its calls and keeps what it was given, and a
// daily job that keeps a timer armed, so that a test knows when the
// engine has handled the time it was set to (advanceTo).
const silenceJobs = `
when("false", "exit ${code:-0}", { name = "backup", expect = "10m",
  on_silence = function(info)
    set{ silences = (get("silences") or 0) + 1, last = info.last_success or -1,
         since = info.since, expect = info.expect, who = info.job_name }
  end })
every("1 day", "true", { name = "tick" })
`

// advanceTo sets the clock to at once the engine armed its timer, and
// waits until it armed the next one: what the time made due is handled.
func advanceTo(te *testEngine, clock *FakeClock, at time.Time) {
	te.t.Helper()
	te.waitFor("a timer", func() bool { return clock.Timers() > 0 })
	clock.Set(at)
	te.waitFor("the next timer", func() bool { return clock.Timers() > 0 })
}

// runOnce starts job and waits for its run to end.
func runOnce(te *testEngine, job string) whenlua.Run {
	te.t.Helper()
	rec, err := te.Start(context.Background(), job)
	if err != nil {
		te.t.Fatal(err)
	}
	te.waitIdle()
	rs := te.runs(job)
	if len(rs) == 0 || rs[len(rs)-1].Serial != rec.Serial {
		te.t.Fatalf("run %d of %s not recorded: %+v", rec.Serial, job, rs)
	}
	return rs[len(rs)-1]
}

func silentJobs(te *testEngine) []whenlua.Silent { return te.status().Silent }

func TestASilenceIsRaisedOnceAfterTheWindowAndEndedByASuccess(t *testing.T) {
	t0 := testEpoch
	te, clock := clockedEngine(t, "s.lua", silenceJobs, t0)

	advanceTo(te, clock, t0.Add(10*time.Minute-time.Second))
	if s := silentJobs(te); len(s) != 0 {
		t.Fatalf("silent before the window ran out: %+v", s)
	}
	advanceTo(te, clock, t0.Add(10*time.Minute))
	s := silentJobs(te)
	if len(s) != 1 || s[0].Job != "backup" || !s[0].SilentSince.Equal(t0.Add(10*time.Minute)) || !s[0].LastSuccess.IsZero() || s[0].Expect != 10*time.Minute {
		t.Fatalf("after the window: silent = %+v", s)
	}
	want := map[string]whenlua.Value{"silences": whenlua.Int(1), "last": whenlua.Int(-1), "since": whenlua.Int(t0.Unix()),
		"expect": whenlua.Int(600), "who": whenlua.String("backup")}
	for name, v := range want {
		if got := te.get(name); !got.Equal(v) {
			t.Errorf("on_silence gave %s = %v, want %v", name, got, v)
		}
	}
	// Still silent later: the hook is not called again.
	advanceTo(te, clock, t0.Add(30*time.Minute))
	if n := te.get("silences"); !n.Equal(whenlua.Int(1)) || len(silentJobs(te)) != 1 {
		t.Fatalf("while silent: hook called %v times, silent %+v", n, silentJobs(te))
	}
	// A failed run does not end it; a successful one does.
	te.set("code", 3)
	runOnce(te, "backup")
	if len(silentJobs(te)) != 1 {
		t.Fatal("a failed run ended the silence")
	}
	te.set("code", 0)
	ok := runOnce(te, "backup")
	if s := silentJobs(te); len(s) != 0 {
		t.Fatalf("still silent after a success: %+v", s)
	}
	// A new silence, counted from that success: the hook is called again.
	advanceTo(te, clock, ok.End.Add(10*time.Minute-time.Second))
	if s := silentJobs(te); len(s) != 0 {
		t.Fatalf("silent before the window after the success ran out: %+v", s)
	}
	advanceTo(te, clock, ok.End.Add(10*time.Minute))
	if s := silentJobs(te); len(s) != 1 || !s[0].LastSuccess.Equal(ok.End) {
		t.Fatalf("the second silence: %+v", s)
	}
	if n, last := te.get("silences"), te.get("last"); !n.Equal(whenlua.Int(2)) || last.T != whenlua.TypeFloat && last.T != whenlua.TypeInt {
		t.Fatalf("second silence: hook called %v times, last_success %v", n, last)
	}
	if h, err := te.History(context.Background(), "silences", 1); err != nil || len(h) != 1 || h[0].Origin != "job backup on_silence" {
		t.Fatalf("origin of the hook's set: %+v %v", h, err)
	}
}

func TestASilenceSurvivesARestartWithoutASecondCall(t *testing.T) {
	t0 := testEpoch
	te, clock := clockedEngine(t, "s.lua", silenceJobs, t0)
	advanceTo(te, clock, t0.Add(10*time.Minute))
	if len(silentJobs(te)) != 1 {
		t.Fatal("not silent after the window")
	}
	te = te.restart()
	s := silentJobs(te)
	if len(s) != 1 || !s[0].SilentSince.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("after a restart: silent = %+v", s)
	}
	advanceTo(te, clock, t0.Add(2*time.Hour))
	if n := te.get("silences"); !n.Equal(whenlua.Int(1)) {
		t.Fatalf("hook called %v times across a restart", n)
	}
	runOnce(te, "backup")
	if s := silentJobs(te); len(s) != 0 {
		t.Fatalf("a success after the restart did not end it: %+v", s)
	}
}

func TestADaemonStartGivesAJobAWholeWindow(t *testing.T) {
	t0 := testEpoch
	te, clock := clockedEngine(t, "s.lua", silenceJobs, t0)
	p := te.paths
	ok := runOnce(te, "backup")
	te.close()
	// Down for longer than the window: the start counts as its beginning.
	clock.Set(t0.Add(time.Hour))
	te = openTestEngine(t, p, clock)
	if s := silentJobs(te); len(s) != 0 {
		t.Fatalf("silent at once after a start: %+v", s)
	}
	advanceTo(te, clock, t0.Add(time.Hour+10*time.Minute))
	if s := silentJobs(te); len(s) != 1 || !s[0].LastSuccess.Equal(ok.End) {
		t.Fatalf("a window after the start: silent = %+v (last success %v)", s, ok.End)
	}
}

func TestAReloadKeepsTheWindowAndRemovingExpectEndsTheAlarm(t *testing.T) {
	t0 := testEpoch
	te, clock := clockedEngine(t, "s.lua", silenceJobs, t0)
	p := te.paths
	advanceTo(te, clock, t0.Add(5*time.Minute))
	// An edit elsewhere in the file does not restart the window.
	writeFile(t, p.JobsDir+"/s.lua", silenceJobs+"\n-- edited\n")
	te.reload()
	advanceTo(te, clock, t0.Add(10*time.Minute))
	if len(silentJobs(te)) != 1 {
		t.Fatal("the reload restarted the window")
	}
	// A new condition resets the evaluation state, not the alarm.
	writeFile(t, p.JobsDir+"/s.lua", strings.Replace(silenceJobs, `when("false"`, `when("false and true"`, 1))
	te.reload()
	advanceTo(te, clock, t0.Add(11*time.Minute))
	if n := te.get("silences"); len(silentJobs(te)) != 1 || !n.Equal(whenlua.Int(1)) {
		t.Fatalf("a changed condition ended the alarm: silent %+v, hook called %v times", silentJobs(te), n)
	}
	writeFile(t, p.JobsDir+"/s.lua", strings.Replace(silenceJobs, `expect = "10m",
  on_silence`, `
  post`, 1))
	te.reload()
	if s := silentJobs(te); len(s) != 0 {
		t.Fatalf("silent without expect: %+v", s)
	}
}

func TestMailtoMailsASilence(t *testing.T) {
	sendmail, mbox := fakeSendmail(t)
	p := testPaths(t, t.TempDir())
	// The run at midnight fails: the job is silent once its window ends.
	writeFile(t, p.JobsDir+"/m.lua", `every("1 day", "exit 1", {name="nightly", expect="26h", on_silence=mailto("me@example.com")})`)
	t0 := testEpoch.Add(time.Hour)
	clock := NewFakeClock(t0)
	te := openTestEngineOpts(t, p, clock, -1, func(o *EngineOptions) { o.Sendmail = sendmail })
	advanceTo(te, clock, t0.Add(23*time.Hour))
	te.waitIdle()
	advanceTo(te, clock, t0.Add(26*time.Hour))
	te.waitFor("the mail", func() bool { b, _ := os.ReadFile(mbox); return len(b) > 0 })
	b, _ := os.ReadFile(mbox)
	for _, want := range []string{"To: me@example.com", "Subject: whenlua: job nightly silent: no successful run for 26h0m0s", "Last success: none known", "Silent since: 2026-01-02T03:00:00Z"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("mail lacks %q:\n%s", want, b)
		}
	}
	if n := len(te.runs("nightly")); n != 1 {
		t.Errorf("%d runs, want the one at midnight", n)
	}
}
