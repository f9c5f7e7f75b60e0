package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host/runner"
	"github.com/whenlua/whenlua/internal/proctest"
	"github.com/whenlua/whenlua/persist"
)

func TestJobEnvironmentHoldsTypedVariablesJobNameAndSerial(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env.txt")
	te := newTestEngine(t, map[string]string{"j.lua": `when("go == true", "env > ` + out + `; pwd >> ` + out + `", {name="envjob"})`})
	te.set("s", "hello world", "i", 42, "f", 2.5, "gone", 1)
	te.set("gone", nil)
	te.set("go", true)
	te.waitIdle()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	run := te.runs("envjob")[0]
	for _, want := range []string{"\ns=hello world\n", "\ni=42\n", "\nf=2.5\n", "\ngo=true\n", "\nJOBNAME=envjob\n", "\nWHENLUA_HOME=" + te.paths.Home + "\n", "\nJOBSERIAL=" + uintStr(run.Serial) + "\n"} {
		if !strings.Contains("\n"+env, want) {
			t.Errorf("environment lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains("\n"+env, "\ngone=") {
		t.Errorf("unset variable in the environment")
	}
	// The cwd was the run directory, removed after the run.
	lines := strings.Split(strings.TrimSpace(env), "\n")
	cwd := lines[len(lines)-1]
	if !strings.HasPrefix(cwd, te.paths.RunsDir) {
		t.Errorf("cwd %q not under %s", cwd, te.paths.RunsDir)
	}
	if _, err := os.Stat(cwd); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory %s still there: %v", cwd, err)
	}
}

func uintStr(u uint64) string { return strconv.FormatUint(u, 10) }

func TestScriptsRunWithSetE(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `when("go", "echo one; false; echo two", {name="e"})`})
	te.set("go", true)
	te.waitIdle()
	r, err := te.Run(context.Background(), te.runs("e")[0].Serial)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 1 || string(r.Output) != "one\n" {
		t.Fatalf("code %d output %q, want 1 and %q", r.Code, r.Output, "one\n")
	}
}

func TestAPostHookRunsBeforeTheDirectoryIsRemovedAndItsSetTriggersTheNextJob(t *testing.T) {
	te := newTestEngine(t, map[string]string{"chain.lua": `
when("changes('commit')", "echo built $commit > artifact; echo ok", {name="build",
  post=function(r) if r.code == 0 then set("built", vars.commit) end end})
when("changes('built')", "test \"$built\" = abc", {name="test",
  post=function(r) set{tested=vars.built, test_code=r.code, test_dir=r.tmpdir, test_output=r:output()} end})
`})
	te.set("commit", "abc")
	te.waitFor("the chain", func() bool { return !te.get("tested").IsNil() })
	te.waitIdle()
	if v := te.get("tested"); !v.Equal(whenlua.String("abc")) {
		t.Fatalf("tested = %v", v)
	}
	if v := te.get("test_code"); !v.Equal(whenlua.Int(0)) {
		t.Fatalf("test_code = %v", v)
	}
	dir := te.get("test_dir").S
	if dir == "" || te.get("test_output").S != "" {
		t.Fatalf("post saw tmpdir %q output %q", dir, te.get("test_output").S)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("run directory not removed after post: %v", err)
	}
	h, _ := te.History(context.Background(), "built", 0)
	if len(h) != 1 || h[0].Origin != whenlua.OriginPost("build") {
		t.Fatalf("history of built = %+v, want one version from build's post", h)
	}
}

// blockingScript waits until the file gate exists.
func blockingScript(gate string) string {
	return `while [ ! -e ` + gate + ` ]; do sleep 0.01; done`
}

func TestOneAndMaxLimitConcurrentRuns(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	te := newTestEngine(t, map[string]string{"j.lua": `
when("false", "` + blockingScript(gate) + `", {name="single", pre=one()})
when("false", "` + blockingScript(gate) + `", {name="double", pre=max(2)})`})
	ctx := context.Background()
	start := func(name string) error { _, err := te.Start(ctx, name); return err }
	if err := start("single"); err != nil {
		t.Fatal(err)
	}
	err := start("single")
	if !errors.Is(err, whenlua.ErrConflict) {
		t.Fatalf("second single while one runs: %v, want refused", err)
	}
	// The refusal says why: the serial of the run already running.
	jobs, _ := te.Jobs(ctx)
	if want := fmt.Sprintf("pre refused: one(): serial %d still running", jobs[0].Serial); len(jobs) != 1 || !strings.Contains(err.Error(), want) {
		t.Errorf("second single: %v, want %q", err, want)
	}
	for i := range 2 {
		if err := start("double"); err != nil {
			t.Fatalf("double #%d: %v", i+1, err)
		}
	}
	if err := start("double"); !errors.Is(err, whenlua.ErrConflict) {
		t.Fatalf("third double: %v, want refused", err)
	}
	jobs, _ = te.Jobs(ctx)
	if len(jobs) != 3 {
		t.Fatalf("running %d, want 3", len(jobs))
	}
	writeFile(t, gate, "")
	te.waitIdle()
	if err := start("single"); err != nil {
		t.Fatalf("single after the first ended: %v", err)
	}
	te.waitIdle()
	refused := 0
	for _, r := range append(te.runs("single"), te.runs("double")...) {
		if r.State == whenlua.RunRefused {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("refused runs recorded = %d, want 2", refused)
	}
}

func TestCancelAndTimeoutStopTheJob(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `
when("false", "sleep 1000", {name="long"})
when("false", "sleep 1000", {name="short", timeout="50ms"})`})
	ctx := context.Background()
	r, err := te.Start(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	if err := te.Cancel(ctx, r.Serial); err != nil {
		t.Fatal(err)
	}
	if _, err := te.Start(ctx, "short"); err != nil {
		t.Fatal(err)
	}
	te.waitIdle()
	if l := te.runs("long"); l[0].Error != "cancelled" || l[0].Signal == "" {
		t.Fatalf("cancelled run = %+v", l[0])
	}
	if s := te.runs("short"); !strings.HasPrefix(s[0].Error, "timed out") {
		t.Fatalf("timed out run = %+v", s[0])
	}
	if err := te.Cancel(ctx, r.Serial); !errors.Is(err, whenlua.ErrNotFound) {
		t.Fatalf("cancel of a finished run: %v", err)
	}
}

// fakeSendmail writes a sendmail that takes -t and keeps the mail it is
// given in mbox.
func fakeSendmail(t *testing.T) (sendmail, mbox string) {
	t.Helper()
	dir := t.TempDir()
	sendmail = filepath.Join(dir, "sendmail")
	mbox = filepath.Join(dir, "mbox")
	writeFile(t, sendmail, "#!/bin/sh\n[ \"$1\" = -t ] || exit 9\ncat > "+mbox+"\n")
	os.Chmod(sendmail, 0o755)
	return sendmail, mbox
}

func TestMailtoDeliversThroughSendmail(t *testing.T) {
	sendmail, mbox := fakeSendmail(t)
	te, _ := clockedEngine(t, "m.lua", `when("go", "echo the output; exit 3", {name="mailer", post=mailto("me@example.com")})`, testEpoch)
	te.opts.Sendmail = sendmail
	te.set("go", true)
	te.waitIdle()
	te.waitFor("the mail", func() bool { b, _ := os.ReadFile(mbox); return strings.Contains(string(b), "the output") })
	b, _ := os.ReadFile(mbox)
	if !strings.Contains(string(b), "To: me@example.com") || !strings.Contains(string(b), "mailer") {
		t.Fatalf("mail = %q", b)
	}
}

func TestStoppingTheDaemonStopsRunningJobsAndRecordsTheirRuns(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/j.lua", `when("false", "trap '' TERM; sleep 1000", {name="stubborn"}) when("false", "sleep 1000", {name="long"})`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	ctx := context.Background()
	r1, err := te.Start(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := te.Start(ctx, "stubborn")
	if err != nil {
		t.Fatal(err)
	}
	te = te.restart()
	for _, serial := range []uint64{r1.Serial, r2.Serial} {
		r, err := te.Run(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != whenlua.RunDone || r.Error != "stopped with the daemon" || r.Signal == "" {
			t.Errorf("run %d after stop = state %s error %q signal %q", serial, r.State, r.Error, r.Signal)
		}
	}
}

func TestRunsInFlightAtACrashAreRecordedAsLostAndTheirLeftoversCleared(t *testing.T) {
	p := testPaths(t, t.TempDir())
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	// What a daemon killed with SIGKILL leaves: a run committed as running,
	// its process still going, ignoring SIGTERM; and a run whose recorded
	// pid has been taken by a process that is not the run's.
	dir := filepath.Join(p.RunsDir, "run-7-x")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	startProc := func(dir, marker string) (*exec.Cmd, chan struct{}) {
		cmd := proctest.Stubborn(t, dir, append(os.Environ(), marker), &syscall.SysProcAttr{Setpgid: true})
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		return cmd, exited
	}
	orphan, exited := startProc(dir, runner.MarkerVar+"="+dir)
	// Not the run's, though in its directory and with its recorded pid.
	stranger, strangerExited := startProc(dir, runner.MarkerVar+"="+dir+"-other")
	recs := []whenlua.Run{
		{Serial: 7, Job: "j", State: whenlua.RunRunning, Start: testEpoch, PID: orphan.Process.Pid, Dir: dir},
		{Serial: 8, Job: "j", State: whenlua.RunRunning, Start: testEpoch, PID: stranger.Process.Pid, Dir: filepath.Join(p.RunsDir, "run-8-y")},
		{Serial: 9, Job: "j", State: whenlua.RunQueued, Start: testEpoch},
	}
	if err := te.store.Commit(&persist.Batch{Runs: recs, Serial: 9}); err != nil {
		t.Fatal(err)
	}
	te = te.restart()
	want := map[uint64]string{
		7: "the daemon stopped while it ran; 1 of its processes was stopped at restart",
		8: "the daemon stopped while it ran",
		9: "the daemon stopped before it started",
	}
	for serial, why := range want {
		r, err := te.Run(context.Background(), serial)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != whenlua.RunLost || r.End.IsZero() || r.Error != why {
			t.Errorf("run %d after restart = %+v, want lost: %s", serial, r, why)
		}
	}
	// SIGTERM is ignored: SIGKILL follows after the grace.
	select {
	case <-exited:
		if ws, ok := orphan.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("the orphaned process ended with %v, want SIGKILL", orphan.ProcessState)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the orphaned process was not stopped")
	}
	select {
	case <-strangerExited:
		t.Errorf("a process that is not the run's was stopped: %v", stranger.ProcessState)
	default:
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover run directory: %v", err)
	}
}

func TestStartSaysSoWhenTheProcessCannotStart(t *testing.T) {
	te := newTestEngine(t, map[string]string{"j.lua": `when("false", "true", {name="j"})`})
	te.opts.Shell = "/nonexistent/sh"
	r, err := te.Start(context.Background(), "j")
	if !errors.Is(err, whenlua.ErrConflict) || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("Start with a missing shell = %+v, %v; want an error", r, err)
	}
	if runs := te.runs("j"); len(runs) != 1 || runs[0].State != whenlua.RunFailed {
		t.Fatalf("runs = %+v, want one failed", runs)
	}
}
