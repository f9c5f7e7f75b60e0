package persist

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// crashDirEnv tells the re-executed test binary to act as the crashing child;
// crashModeEnv changes how its store is opened (see crashOptions).
const (
	crashDirEnv  = "WHENLUA_PERSIST_CRASH_DIR"
	crashModeEnv = "WHENLUA_PERSIST_CRASH_MODE"
)

// crashOptions are the child's store options for a mode: "" is the daemon's
// setting; "flushes" has a 1 MiB memtable, so that kills land around
// memtable flushes and compactions.
func crashOptions(dir, mode string) Options {
	o := Options{Dir: dir, Logger: quietLogger, MaintainEvery: -1}
	if mode == "flushes" {
		o.memTableSize = 1 << 20
	}
	return o
}

// crashBatch is commit i of the child: two variables that must always be
// equal, a job state, a run and the serial; every tenth commit also sets 20
// variables of 64 KiB, to be killed in the middle of big value-log writes.
func crashBatch(i int) *Batch {
	v := whenlua.Int(int64(i))
	b := &Batch{
		Vars:      []VarChange{{Name: "x", Value: v, Origin: "crash"}, {Name: "y", Value: v, Origin: "crash"}},
		JobStates: map[string]*whenlua.JobState{"j": {Cond: "x", Evaluated: true, Snapshot: map[string]whenlua.Value{"x": v}}},
		Runs:      []whenlua.Run{{Serial: uint64(i), Job: "j", State: whenlua.RunRunning, Start: time.Now()}},
		Serial:    uint64(i),
	}
	if i%10 == 0 {
		pad := whenlua.String(strings.Repeat(fmt.Sprintf("%08d", i), whenlua.MaxValueLen/8))
		for k := range 20 {
			b.Vars = append(b.Vars, VarChange{Name: fmt.Sprintf("pad_%02d", k), Value: pad, Origin: "crash"})
		}
	}
	return b
}

// TestCrashChild is the child of TestCrashLosesNoAcknowledgedCommit: it
// commits in a loop and prints each acknowledged commit until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by the crash tests")
	}
	s, err := Open(crashOptions(dir, os.Getenv(crashModeEnv)))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 1; ; i++ {
		if err := s.Commit(crashBatch(i)); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ack", i) // os.Stdout is unbuffered: printed means acknowledged
	}
}

func TestCrashLosesNoAcknowledgedCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for round, mode := range []string{"", "flushes", ""} {
		name := fmt.Sprint("kill ", round+1)
		if mode != "" {
			name += " with " + mode
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			acked := crashChild(t, dir, mode, 200+rand.IntN(300))
			s := openTest(t, Options{Dir: dir})
			checkAfterCrash(t, s, acked)
		})
	}
}

// crashChild runs TestCrashChild on dir in mode (see crashOptions),
// SIGKILLs it after it acknowledged about n commits and returns the last
// acknowledged commit.
func crashChild(t *testing.T, dir, mode string, n int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashModeEnv+"="+mode)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	last, killed := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		num, ok := strings.CutPrefix(line, "ack ")
		if !ok {
			continue // test framework output
		}
		i, err := strconv.Atoi(num)
		if err != nil || i != last+1 {
			t.Fatalf("child printed %q after ack %d", line, last)
		}
		last = i
		if !killed && last >= n {
			// Kill at a random point of a later commit.
			time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended by itself after ack %d: %v\n%s", last, err, stderr.String())
	}
	t.Logf("killed after %d acknowledged commits", last)
	return last
}

// checkAfterCrash asserts that every commit up to acked is stored whole, and
// that the one commit in flight is either whole or absent.
func checkAfterCrash(t *testing.T, s *Store, acked int) {
	t.Helper()
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	x, y := vars["x"].I, vars["y"].I
	if x != y {
		t.Fatalf("a commit was torn: x=%d y=%d", x, y)
	}
	if x != int64(acked) && x != int64(acked)+1 {
		t.Fatalf("x=%d after %d acknowledged commits", x, acked)
	}
	last := int(x)
	for _, name := range []string{"x", "y"} {
		h, err := s.History(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != last {
			t.Fatalf("%s has %d versions, want %d", name, len(h), last)
		}
		for i, v := range h {
			if v.Value.I != int64(last-i) || v.Origin != "crash" {
				t.Fatalf("%s version %d is %#v", name, i, v)
			}
		}
	}
	wantPad := strings.Repeat(fmt.Sprintf("%08d", last/10*10), whenlua.MaxValueLen/8)
	for k := range 20 {
		if got := vars[fmt.Sprintf("pad_%02d", k)].S; got != wantPad {
			t.Fatalf("pad_%02d holds %.16q..., want commit %d", k, got, last/10*10)
		}
	}
	if n, err := s.Serial(); err != nil || n != uint64(last) {
		t.Errorf("serial %d, %v; want %d", n, err, last)
	}
	st, err := s.JobStates()
	if err != nil || st["j"].Snapshot["x"].I != int64(last) {
		t.Errorf("job state %#v, %v", st["j"], err)
	}
	running, err := s.RunningRuns()
	if err != nil || len(running) != last || running[0].Serial != uint64(last) {
		t.Errorf("%d running runs, %v; want %d", len(running), err, last)
	}
}
