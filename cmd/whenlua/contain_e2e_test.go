package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/whenlua/whenlua"
)

// After kill -9 of the daemon, a run that ignores SIGTERM must not go on
// beside the next copy of its job: the restarted daemon records it as lost
// and ends it, SIGTERM then SIGKILL after the grace, and one() then lets a
// new copy start alone.
func TestARunLeftByAKilledDaemonIsEndedAtRestartEvenWhenItIgnoresSIGTERM(t *testing.T) {
	h := newHome(t)
	h.writeJob("s.lua", `when("false", "trap '' TERM; sleep 1000 & wait", {name="stubborn", pre=one()})`)
	h.start()
	first := h.running(h.startJob("stubborn").Serial)
	t.Cleanup(func() { syscall.Kill(-first.PID, syscall.SIGKILL) })
	killAndWait(t, h.pid())
	if !processAlive(first.PID) {
		t.Fatalf("run %d (pid %d) died with the daemon", first.Serial, first.PID)
	}
	h.start()
	waitFor(t, "the run left by the killed daemon to end", func() bool { return !processAlive(first.PID) })
	r, ok := h.runOf(first.Serial)
	if !ok || r.State != whenlua.RunLost || !strings.Contains(r.Error, "stopped at restart") {
		t.Fatalf("run %d after restart = %+v, want lost with its processes stopped", first.Serial, r)
	}
	second := h.running(h.startJob("stubborn").Serial)
	for _, j := range h.runsJSON("jobs") {
		if j.Serial != second.Serial {
			t.Errorf("run %d of %s runs beside the new copy %d", j.Serial, j.Job, second.Serial)
		}
	}
}

// A job's child that leaves the process group (setsid) and ignores SIGTERM
// is gone once the cancelled run is recorded.
func TestACancelledRunLeavesNoProcessThatLeftItsGroup(t *testing.T) {
	h := newHome(t)
	h.writeJob("e.lua", `when("false", [[
setsid sh -c 'trap "" TERM; echo $$ > "$WHENLUA_HOME/escaped"; exec sleep 1000' >/dev/null 2>&1 &
sleep 1000]], {name="escape"})`)
	h.start()
	run := h.running(h.startJob("escape").Serial)
	path := filepath.Join(h.dir, "escaped")
	var pid int
	waitFor(t, "the escaped child to start", func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if pgid, err := unix.Getpgid(pid); err != nil || pgid == run.PID {
		t.Fatalf("child %d: group %d (%v), want one of its own", pid, pgid, err)
	}
	h.ok("cancel", strconv.FormatUint(run.Serial, 10))
	waitFor(t, "the cancelled run to be recorded", func() bool { _, ok := h.runOf(run.Serial); return ok })
	if processAlive(pid) {
		t.Errorf("process %d, which left run %d's group, outlived the cancelled run", pid, run.Serial)
	}
}

// `daemon start --max-runs 2`: the third due run is listed as queued, can
// be cancelled, and is recorded as cancelled.
func TestRunsBeyondMaxRunsAreListedAsQueuedAndCanBeCancelled(t *testing.T) {
	h := newHome(t)
	h.writeJob("q.lua", `for i = 1, 3 do when("go == 1", "sleep 1000", {name = "q" .. i}) end`)
	h.ok("daemon", "start", "--max-runs", "2")
	h.ok("set", "--type", "int", "go=1")
	lines := strings.Split(strings.TrimSpace(h.ok("jobs")), "\n")
	if len(lines) != 3 {
		t.Fatalf("jobs:\n%s\nwant 3 runs", strings.Join(lines, "\n"))
	}
	queued := strings.Split(lines[2], "\t")
	if len(queued) != 5 || queued[1] != "q3" || queued[3] != "queued" || queued[4] != "-" {
		t.Fatalf("third line of jobs = %q, want q3 queued", lines[2])
	}
	for _, l := range lines[:2] {
		if f := strings.Split(l, "\t"); len(f) != 5 || f[3] == "queued" {
			t.Errorf("jobs line %q, want a running run", l)
		}
	}
	runs := h.runsJSON("jobs")
	if len(runs) != 3 || runs[2].State != whenlua.RunQueued || runs[0].State != whenlua.RunRunning {
		t.Fatalf("jobs --json = %+v", runs)
	}
	h.ok("cancel", queued[0])
	r, ok := h.runOf(runs[2].Serial)
	if !ok || r.State != whenlua.RunCancelled {
		t.Fatalf("cancelled queued run = %+v, want cancelled", r)
	}
	if got := h.ok("log"); !strings.Contains(got, "\tcancelled\n") {
		t.Errorf("log does not show the cancelled run:\n%s", got)
	}
	h.ok("daemon", "stop")
}
