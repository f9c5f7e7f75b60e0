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
	t.Parallel()
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
	t.Cleanup(func() { syscall.Kill(-second.PID, syscall.SIGKILL) })
	for _, j := range h.runsJSON("jobs") {
		if j.Serial != second.Serial {
			t.Errorf("run %d of %s runs beside the new copy %d", j.Serial, j.Job, second.Serial)
		}
	}
}

// A job's child that leaves the process group (setsid) and ignores SIGTERM
// is gone once the cancelled run is recorded.
func TestACancelledRunLeavesNoProcessThatLeftItsGroup(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	if got := h.ok("log"); !strings.Contains(got, "\tcancelled\tcancelled before it started\n") {
		t.Errorf("log does not show the cancelled run:\n%s", got)
	}
	h.ok("daemon", "stop")
}

// pidsCgroup makes a pids cgroup (v1) for the test, or skips when the
// machine offers none that this user may create.
func pidsCgroup(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup/pids", "whenlua-test-"+strconv.Itoa(os.Getpid())+"-"+t.Name())
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("no pids cgroup to limit the daemon's tasks: %v", err)
	}
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(dir, "pids.max"), []byte("max"), 0o644)
		waitFor(t, "the cgroup to empty", func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return len(strings.Fields(string(b))) == 0
		})
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup: %v", err)
		}
	})
	return dir
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// Under a limit on tasks (processes and threads), many due runs make
// failed runs that say why, and the daemon goes on; it once spent a thread
// per running job and aborted when the runtime could not create one.
func TestUnderATaskLimitRunsThatCannotForkFailAndTheDaemonGoesOn(t *testing.T) {
	t.Parallel()
	cg := pidsCgroup(t)
	h := newHome(t)
	h.writeJob("many.lua", `for i = 1, 40 do when("go == 1", "sleep 1000", {name = string.format("m%02d", i)}) end`)
	pid := h.start()
	t.Cleanup(func() { h.run("daemon", "stop") })
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Room for a few runs beside the daemon's own threads, not for 40.
	limit := readInt(t, filepath.Join(cg, "pids.current")) + 12
	if err := os.WriteFile(filepath.Join(cg, "pids.max"), []byte(strconv.Itoa(limit)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.ok("set", "--type", "int", "go=1")
	h.answers("forks failing at the task limit")
	if h.pid() != pid {
		t.Fatalf("the daemon (pid %d) is gone:\n%s", pid, h.daemonLog())
	}
	var failed, running int
	log := h.runsJSON("log", "-n", "100")
	for _, r := range log {
		if r.State == whenlua.RunFailed {
			failed++
			if !strings.Contains(r.Error, "resource temporarily unavailable") {
				t.Errorf("failed run %d of %s says %q, want the fork's reason", r.Serial, r.Job, r.Error)
			}
		}
	}
	running = len(h.runsJSON("jobs"))
	// The others started, but their shell could not fork its sleep.
	if failed == 0 || len(log)+running != 40 {
		t.Errorf("%d failed, %d ended and %d running of 40 due runs under a limit of %d tasks", failed, len(log)-failed, running, limit)
	}
	t.Logf("limit %d tasks: %d runs running, %d failed to fork, %d ended", limit, running, failed, len(log)-failed)
}
