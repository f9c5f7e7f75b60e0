package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

func TestEveryAcknowledgedSetSurvivesSIGKILLOfTheDaemon(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	const cycles = 4
	for cycle := range cycles {
		name := fmt.Sprintf("c%d", cycle)
		c := h.client()
		var (
			mu    sync.Mutex
			acked []int64
		)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.Set(context.Background(), whenlua.SetRequest{Mode: whenlua.ModeSet,
					Assignments: []whenlua.Assignment{{Name: name, Value: whenlua.Int(i)}, {Name: "last", Value: whenlua.Int(i)}}})
				if err != nil {
					return // the daemon died under this set: not acknowledged
				}
				mu.Lock()
				acked = append(acked, i)
				mu.Unlock()
			}
		}()
		// Kill somewhere between 50 and 400 acknowledged sets (history keeps 1000).
		killAt := 50 + rand.IntN(350)
		waitFor(t, "sets to be acknowledged", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= killAt
		})
		killAndWait(t, h.pid())
		<-done
		close(stop)
		c.Close()

		if _, err := os.Stat(filepath.Join(h.dir, "whenlua.sock")); err != nil {
			t.Logf("cycle %d: the killed daemon left no socket (%v)", cycle, err)
		}
		h.start()
		mu.Lock()
		last := acked[len(acked)-1]
		mu.Unlock()
		got, err := strconv.ParseInt(strings.TrimSpace(h.ok("get", name)), 10, 64)
		if err != nil || got < last {
			t.Fatalf("cycle %d: %s = %d after restart, but %d was acknowledged", cycle, name, got, last)
		}
		hist := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(h.ok("history", name)), "\n") {
			f := strings.Split(line, "\t")
			hist[f[len(f)-1]] = true
		}
		for _, v := range acked {
			if !hist[strconv.FormatInt(v, 10)] {
				t.Fatalf("cycle %d: acknowledged version %d of %s is not in its history", cycle, v, name)
			}
		}
		t.Logf("cycle %d: %d acknowledged sets, all there after kill -9 and restart", cycle, len(acked))
	}
}

func TestASecondDaemonOnTheSameHomeIsRefusedNamingThePid(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	pid := h.start()
	h.fails(1, []string{"daemon", "start"}, "already running", fmt.Sprintf("pid %d", pid))
	// The lock itself, not only the socket check, refuses a foreground daemon.
	h.fails(1, []string{"daemon", "run"}, "already running", fmt.Sprintf("pid %d", pid))
	if h.pid() != pid {
		t.Errorf("the first daemon no longer answers")
	}
	if out := h.ok("daemon", "status"); !strings.HasPrefix(out, fmt.Sprintf("running\tpid %d\t", pid)) || !strings.Contains(out, "home "+h.dir) {
		t.Errorf("daemon status: %q", out)
	}
}

func TestARestartAfterKill9Works(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	pid := h.start()
	h.ok("set", "k=v")
	killAndWait(t, pid)
	if fi, err := os.Lstat(filepath.Join(h.dir, "whenlua.sock")); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("expected the killed daemon's stale socket: %v", err)
	}
	h.fails(1, []string{"vars"}, "no daemon is running")
	pid2 := h.start()
	if pid2 == pid {
		t.Fatalf("same pid")
	}
	if got := h.ok("get", "k"); got != "v\n" {
		t.Errorf("get k after kill -9 and restart: %q", got)
	}
	h.ok("daemon", "stop")
	if !processGone(pid2) {
		t.Errorf("daemon stop returned while pid %d still runs", pid2)
	}
	if _, err := os.Lstat(filepath.Join(h.dir, "whenlua.sock")); !os.IsNotExist(err) {
		t.Errorf("a stopped daemon left its socket: %v", err)
	}
	if r := h.run("daemon", "status"); r.code != 1 || !strings.HasPrefix(r.stdout, "stopped") {
		t.Errorf("daemon status after stop: %v", r)
	}
}

func TestAFreshHomeIsPrivateAndGetsTheSampleJobFile(t *testing.T) {
	t.Parallel()
	h := newBareHome(t)
	h.start()
	for _, d := range []string{"", "jobs", "jobs/lib", "state"} {
		fi, err := os.Stat(filepath.Join(h.dir, d))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s/%s: %v, want a directory of mode 0700", h.dir, d, err)
			continue
		}
	}
	fi, err := os.Lstat(filepath.Join(h.dir, "whenlua.sock"))
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v %v, want a socket of mode 0600", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(h.dir, "daemon.log")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("daemon.log: %v", err)
	}
	if names := h.ok("names"); !strings.Contains(names, "sample.greet") {
		t.Errorf("the sample job file is not loaded: %q", names)
	}
}

func TestAPeerOfAnotherUserIsRefused(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	h := newHome(t)
	h.start()
	// Let uid 65534 reach the socket, so that only the daemon's check stops it.
	for _, p := range []string{filepath.Dir(h.dir), h.dir} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(h.dir, "whenlua.sock")
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	// Our client refuses a daemon of another user before the daemon can:
	// the daemon's own check is seen with a raw request.
	for _, args := range [][]string{{"vars"}, {"set", "intruder=1"}, {"daemon", "stop"}} {
		cmd := exec.Command(bin, append([]string{"--home", h.dir}, args...)...)
		asNobody(cmd)
		r := runCmd(t, cmd)
		if r.code != 1 || !strings.Contains(r.stderr, "belongs to uid 0, not to you (uid 65534)") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("whenlua %s as uid 65534: %v, want refusal", strings.Join(args, " "), r)
		}
	}
	cmd := exec.Command(helper, sock)
	asNobody(cmd)
	cmd.Env = append(cmd.Env, helperEnv+"=request")
	if r := runCmd(t, cmd); r.code != 0 || !strings.HasPrefix(r.stdout, "HTTP/1.1 403 ") {
		t.Errorf("a raw request as uid 65534: %v, want 403", r)
	}
	if h.pid() == 0 {
		t.Fatal("a refused peer stopped the daemon")
	}
	if vars := h.ok("vars"); vars != "" {
		t.Errorf("a refused peer set variables: %q", vars)
	}
	log, _ := os.ReadFile(filepath.Join(h.dir, "daemon.log"))
	if !strings.Contains(string(log), "refused a peer") || !strings.Contains(string(log), "uid=65534") {
		t.Errorf("no log line for the refused peer:\n%s", log)
	}
}

func TestRetentionGivenAtARestartTrimsTheHistory(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	for i := 1; i <= 5; i++ {
		h.ok("set", "--type", "int", "x="+strconv.Itoa(i))
	}
	versions := func() []string { return strings.Split(strings.TrimSpace(h.ok("history", "x")), "\n") }
	if v := versions(); len(v) != 5 {
		t.Fatalf("history before: %q", v)
	}
	h.fails(2, []string{"daemon", "restart", "--history-keep", "0"}, "--history-keep: want at least 1")
	h.fails(2, []string{"daemon", "restart", "--max-runs", "0"}, "--max-runs: want at least 1")
	h.fails(2, []string{"daemon", "restart", "--lua-timeout", "0s"}, "--lua-timeout: want a positive duration")
	h.ok("daemon", "restart", "--history-keep", "2", "--runs-keep", "10", "--history-max-age", "720h")
	// The daemon applies retention as it starts, in the background.
	deadline := time.Now().Add(20 * time.Second)
	for len(versions()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("history after a restart with --history-keep 2: %q", versions())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := versions(); !strings.HasSuffix(v[0], "\tcli\t5") || !strings.HasSuffix(v[1], "\tcli\t4") {
		t.Errorf("the newest versions were not the ones kept: %q", v)
	}
}

// SIGHUP rescans the jobs directory and says so in the log; the daemon
// goes on.
func TestSIGHUPRescansTheJobsDirectoryAndLogsIt(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("good.lua", `every("hour", "true", { name = "good" })`+"\n")
	h.writeJob("bad.lua", "when(\n")
	pid := h.start()
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	want := `msg="jobs directory rescanned on SIGHUP" files=2 failed=1`
	waitFor(t, "the rescan in daemon.log", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.dir, "daemon.log"))
		return strings.Contains(string(b), want)
	})
	h.ok("set", "after=hup")
	if h.pid() != pid {
		t.Errorf("the daemon changed: pid %d, want %d", h.pid(), pid)
	}
}
