package runner

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua/internal/proctest"
)

// alive reports whether pid names a live process (not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// escaped starts a run whose child leaves the process group (setsid) and
// ignores SIGTERM, and returns the run, its result channel and the pid of
// the escaped child.
func escaped(t *testing.T, r *Runner, spec Spec) (*Proc, <-chan Result, int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("a process that leaves its group is followed on Linux only")
	}
	spec.Script = "setsid sh -c 'trap \"\" TERM; echo $$ > escaped; exec sleep 1000' >/dev/null 2>&1 &\n" +
		"while [ ! -s escaped ]; do :; done\necho ready\n" + spec.Script
	p, results := start(t, r, spec)
	w, _ := tail(p)
	w.waitFor(t, "ready")
	b, err := os.ReadFile(filepath.Join(p.Dir(), "escaped"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("escaped pid %q: %v", b, err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if !alive(pid) {
		t.Fatalf("escaped child %d is not running", pid)
	}
	for _, g := range group(t, p.PID()) {
		if g == pid {
			t.Fatalf("child %d did not leave the group", pid)
		}
	}
	return p, results, pid
}

// escapedRun runs spec with a child that leaves the run's group, cancels
// the run when cancel is set, and returns its result; the child outliving
// the run (the what run) is an error.
func escapedRun(t *testing.T, spec Spec, cancel bool, what string) Result {
	t.Helper()
	r := newRunner(t, Options{Grace: 100 * time.Millisecond})
	p, results, pid := escaped(t, r, spec)
	if cancel {
		p.Cancel()
	}
	res := wait(t, results)
	if alive(pid) {
		t.Errorf("process %d, which left the run's group, outlived the %s", pid, what)
	}
	return res
}

func TestAProcessThatLeftTheGroupIsStoppedByCancel(t *testing.T) {
	// The child ignores SIGTERM.
	if res := escapedRun(t, Spec{Script: "sleep 1000"}, true, "cancelled run"); !res.Cancelled {
		t.Errorf("cancelled %v", res.Cancelled)
	}
}

func TestAProcessThatLeftTheGroupIsStoppedByTheTimeout(t *testing.T) {
	// The timeout leaves the script ample time to start its child first.
	if res := escapedRun(t, Spec{Script: "sleep 1000", Timeout: 2 * time.Second}, false, "timed-out run"); !res.TimedOut {
		t.Errorf("timed out %v", res.TimedOut)
	}
}

func TestAProcessThatLeftTheGroupIsStoppedWhenTheShellExits(t *testing.T) {
	if res := escapedRun(t, Spec{Script: "echo bye"}, false, "run"); res.Code != 0 || res.Cancelled || res.TimedOut {
		t.Errorf("code %d cancelled %v timed out %v", res.Code, res.Cancelled, res.TimedOut)
	}
}

// threads is the number of OS threads of this process.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

// Waiting for a process must not hold an OS thread: under a task limit a
// thread per run made the runtime abort (pthread_create failed).
func TestManyRunningJobsDoNotHoldAThreadEach(t *testing.T) {
	const n = 200
	r := newRunner(t, Options{Grace: 100 * time.Millisecond})
	before := threads(t)
	var procs []*Proc
	var results []<-chan Result
	for range n {
		p, res := start(t, r, Spec{Script: "echo ready\nexec sleep 1000"})
		procs, results = append(procs, p), append(results, res)
	}
	for _, p := range procs {
		w, _ := tail(p)
		w.waitFor(t, "ready")
	}
	during := threads(t)
	t.Logf("%d running jobs: %d threads before, %d while they run", n, before, during)
	if during-before >= n/4 {
		t.Errorf("%d running jobs took %d more OS threads (from %d to %d)", n, during-before, before, during)
	}
	for _, p := range procs {
		p.Cancel()
	}
	for _, res := range results {
		wait(t, res)
	}
}

// A run of an earlier daemon: its processes carry its marker, one of them
// outside its group and ignoring SIGTERM.
func TestStopStrayStopsTheProcessesOfALostRunOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("stray processes are found on Linux only")
	}
	dir := t.TempDir()
	startStray := func(marker string) *exec.Cmd {
		cmd := proctest.Stubborn(t, "", append([]string{MarkerVar + "=" + marker}, testEnv...), &syscall.SysProcAttr{Setsid: true})
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	lost := startStray(dir)
	other := startStray(dir + "-other")
	waited := make(chan error, 1)
	go func() { waited <- lost.Wait() }()

	r := New(Options{BaseDir: t.TempDir(), Grace: 100 * time.Millisecond})
	if n := r.StopStray(dir, lost.Process.Pid); n != 1 {
		t.Errorf("StopStray found %d processes, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if ws, ok := lost.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("the stray that ignores SIGTERM ended with %v, want SIGKILL after the grace", err)
		}
	case <-time.After(guard):
		t.Fatal("the stray still runs")
	}
	if !alive(other.Process.Pid) {
		t.Error("a process of another run was stopped")
	}
}

// A process of the run that appears after kill's sweep read /proc, and is
// found first by the sweep the run's end makes, is sent SIGKILL, not
// SIGTERM alone: a process ignoring SIGTERM would otherwise be waited for
// forever and the run would never end.
func TestAProcessFoundFirstAfterTheKillIsKilled(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("a process that leaves its group is followed on Linux only")
	}
	r := newRunner(t, Options{Grace: 10 * time.Millisecond})
	killScanned := make(chan struct{})
	type late struct {
		cmd   *exec.Cmd
		lines <-chan string
	}
	started := make(chan late, 1)
	hook := func(p *Proc, sigs []syscall.Signal, scanned bool) {
		switch {
		case sigs[0] == syscall.SIGTERM && !scanned:
			<-killScanned // the end's sweep reads /proc after kill's
		case sigs[0] == syscall.SIGTERM && scanned:
			<-p.killed
		case sigs[0] == syscall.SIGKILL && scanned:
			// Between kill's reading of /proc and its signals, a process of
			// the run appears that reports SIGTERM and ignores it.
			defer close(killScanned)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Error(err)
				return
			}
			cmd := exec.Command("/bin/sh", "-c", `trap 'echo TERM' TERM; echo ready; while :; do sleep 1 >/dev/null; done`)
			cmd.Env = append(testEnv, p.marker)
			cmd.Stdout = pw
			err = cmd.Start()
			pw.Close()
			if err != nil {
				pr.Close()
				t.Error(err)
				return
			}
			lines := make(chan string, 4)
			go func() {
				defer pr.Close()
				defer close(lines)
				sc := bufio.NewScanner(pr)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			if <-lines != "ready" {
				t.Error("the late process did not start")
			}
			started <- late{cmd, lines}
		}
	}
	testHookSweep.Store(&hook)
	t.Cleanup(func() { testHookSweep.Store(nil) })
	_, results := start(t, r, Spec{Script: "exit 0"})
	x := <-started
	exited := make(chan error, 1)
	go func() { exited <- x.cmd.Wait() }()
	// Its output ends when it is killed, or says it got SIGTERM.
	if line, ok := <-x.lines; ok {
		t.Errorf("the late process got %s after the run was killed, and no SIGKILL", line)
		x.cmd.Process.Kill() // so that the run ends
	}
	err := <-exited
	if ws, ok := x.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the late process ended with %v, want SIGKILL", err)
	}
	if res := wait(t, results); res.Code != 0 {
		t.Errorf("code %d", res.Code)
	}
}
