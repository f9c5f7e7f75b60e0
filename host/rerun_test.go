package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// A run left running by a daemon that died is recorded lost; when its job
// has rerun_lost, the daemon that records it starts it again as the next
// attempt, and the run sees its attempt and the first attempt's serial. A
// job without the option is not rerun, and reruns stop after
// maxRerunAttempts.
func TestALostRunOfAJobWithRerunLostRunsAgainAsTheNextAttempt(t *testing.T) {
	p := testPaths(t, t.TempDir())
	out := filepath.Join(t.TempDir(), "out")
	writeFile(t, p.JobsDir+"/r.lua", `
when("x == 1", [[echo "$JOBSERIAL $WHENLUA_ATTEMPT $WHENLUA_FIRST_SERIAL" >> `+out+`]], { name = "again", rerun_lost = true })
when("x == 1", "true", { name = "once" })
`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	recs := []whenlua.Run{
		{Serial: 7, Job: "again", Trigger: "when", Attempt: 1, State: whenlua.RunRunning, Start: testEpoch},
		{Serial: 8, Job: "once", Trigger: "when", State: whenlua.RunRunning, Start: testEpoch},
		{Serial: 9, Job: "again", Trigger: "when", Attempt: maxRerunAttempts, FirstSerial: 3, State: whenlua.RunRunning, Start: testEpoch},
	}
	if err := te.store.Commit(&whenlua.Batch{Runs: recs, Serial: 9}); err != nil {
		t.Fatal(err)
	}
	te = te.restart()
	te.waitFor("the rerun", func() bool { return len(te.runs("again")) == 3 })
	te.waitIdle()
	runs := te.runs("again")
	for i, want := range []whenlua.RunState{whenlua.RunLost, whenlua.RunLost, whenlua.RunDone} {
		if runs[i].State != want {
			t.Errorf("run %d of again: %s (%s), want %s", runs[i].Serial, runs[i].State, runs[i].Error, want)
		}
	}
	if r := runs[2]; r.Serial != 10 || r.Attempt != 2 || r.FirstSerial != 7 || r.Trigger != "when" {
		t.Errorf("the rerun: %+v, want serial 10, attempt 2 of the run 7", r)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "10 2 7" {
		t.Errorf("the rerun saw JOBSERIAL, WHENLUA_ATTEMPT, WHENLUA_FIRST_SERIAL = %q, want 10 2 7", got)
	}
	if n := len(te.runs("once")); n != 1 {
		t.Errorf("the job without rerun_lost has %d runs, want its lost one only", n)
	}
}
