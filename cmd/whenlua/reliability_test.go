package main

// The reliability suite, end to end through the real binary and a real
// daemon (the host package has the in-process part). Each test is short by
// default; -reliability.long (or WHENLUA_RELIABILITY_LONG=1) makes the
// loads bigger and the repetitions more.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

var reliabilityLong = flag.Bool("reliability.long", false, "run the long variant of the reliability suite")

// longReliability reports whether the long variant of the reliability suite runs.
func longReliability() bool {
	return *reliabilityLong || os.Getenv("WHENLUA_RELIABILITY_LONG") != ""
}

// byVariant returns short, or long in the long variant.
func byVariant[T any](short, long_ T) T {
	if longReliability() {
		return long_
	}
	return short
}

// runsJSON runs a listing command with --json and decodes its runs.
func (h *home) runsJSON(args ...string) []whenlua.Run {
	h.t.Helper()
	var runs []whenlua.Run
	out := h.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), &runs); err != nil {
		h.t.Fatalf("whenlua %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return runs
}

// runOf returns the finished run serial from `whenlua log --json`.
func (h *home) runOf(serial uint64) (whenlua.Run, bool) {
	h.t.Helper()
	for _, r := range h.runsJSON("log") {
		if r.Serial == serial {
			return r, true
		}
	}
	return whenlua.Run{}, false
}

// startJob runs `whenlua start NAME --json` and returns the run it started.
func (h *home) startJob(name string) whenlua.Run {
	h.t.Helper()
	var r whenlua.Run
	out := h.ok("start", name, "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Serial == 0 || r.Job != name {
		h.t.Fatalf("start %s --json: %q, %v", name, out, err)
	}
	return r
}

// running returns run serial from `whenlua jobs --json`, once it has a pid.
func (h *home) running(serial uint64) whenlua.Run {
	h.t.Helper()
	var run whenlua.Run
	waitFor(h.t, fmt.Sprintf("run %d among the running jobs with a pid", serial), func() bool {
		for _, r := range h.runsJSON("jobs") {
			if r.Serial == serial && r.PID != 0 {
				run = r
				return true
			}
		}
		return false
	})
	return run
}

// processAlive reports whether pid is a live process (not a zombie).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// rssKiB returns the resident set size of pid in KiB.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q", line)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// setLoad is several clients, each setting its own variables in a loop
// until stopped or until the daemon stops answering. Each set assigns
// three variables atomically: the client's counter, its twin (always equal
// after any set), and "tick" (which fires a when-job every 25 sets).
type setLoad struct {
	mu    sync.Mutex
	acked [][]int64 // per client, the values acknowledged, in order
	total int
	stop  chan struct{}
	done  sync.WaitGroup
}

func loadVar(prefix string, k int) string { return fmt.Sprintf("%s_%d", prefix, k) }
func twinVar(prefix string, k int) string { return fmt.Sprintf("%s_%d_twin", prefix, k) }
func startSetLoad(h *home, prefix string, clients int) *setLoad {
	l := &setLoad{acked: make([][]int64, clients), stop: make(chan struct{})}
	for k := range clients {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			c := whenlua.Dial(filepath.Join(h.dir, "whenlua.sock"))
			defer c.Close()
			for i := int64(1); ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				as := []whenlua.Assignment{{Name: loadVar(prefix, k), Value: whenlua.Int(i)}, {Name: twinVar(prefix, k), Value: whenlua.Int(i)}}
				if k == 0 {
					as = append(as, whenlua.Assignment{Name: "tick", Value: whenlua.Int(i)})
				}
				if _, err := c.Set(context.Background(), whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: as}); err != nil {
					return // the daemon died under this set: not acknowledged
				}
				l.mu.Lock()
				l.acked[k] = append(l.acked[k], i)
				l.total++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *setLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// finish stops the clients (they stop by themselves when the daemon dies).
func (l *setLoad) finish() {
	close(l.stop)
	l.done.Wait()
}

// R1 (see also TestEveryAcknowledgedSetSurvivesSIGKILLOfTheDaemon, one
// client, and host's TestRunsInFlightAtACrashAreRecordedAsLost, a record
// planted in the store): several clients and running jobs under repeated
// kill -9; every acknowledged set is there after each restart, atomic sets
// stay atomic, and the runs in flight are recorded as lost.
func TestRepeatedSIGKILLUnderConcurrentSetsLosesNothingAcknowledgedAndRecordsRunsInFlightAsLost(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("load.lua", `
when("false", "sleep 1000", {name="sleeper"})
when("false", "while :; do echo still here; sleep 0.05; done", {name="chatty"})
when("tick % 25 == 0", "echo $tick; sleep 0.2", {name="churn"})
`)
	h.start()
	const clients = 4
	cycles := byVariant(3, 20)
	var orphans []whenlua.Run
	t.Cleanup(func() {
		for _, r := range orphans {
			if r.PID > 0 { // the job's own process group
				_ = syscall.Kill(-r.PID, syscall.SIGKILL)
			}
		}
	})
	for cycle := range cycles {
		prefix := fmt.Sprintf("c%d", cycle)
		sleeper := h.running(h.startJob("sleeper").Serial)
		chatty := h.running(h.startJob("chatty").Serial)
		orphans = append(orphans, sleeper, chatty)
		load := startSetLoad(h, prefix, clients)
		// Kill somewhere between 40 and 400 acknowledged sets in all
		// (history keeps 1000 versions of each variable).
		killAt := 40 + rand.IntN(360)
		waitFor(t, "sets to be acknowledged", func() bool { return load.count() >= killAt })
		killAndWait(t, h.pid())
		load.finish()

		// A job is its own process group: a silent one outlives the
		// daemon; one that writes gets EPIPE on its output (set -e) or
		// SIGPIPE and ends.
		if !processAlive(sleeper.PID) {
			t.Errorf("cycle %d: the silent job of run %d (pid %d) died with the daemon", cycle, sleeper.Serial, sleeper.PID)
		}
		waitFor(t, "the job writing output to end without its daemon", func() bool { return !processAlive(chatty.PID) })
		h.start()
		for k := range clients {
			acked := load.acked[k]
			if len(acked) == 0 {
				continue
			}
			last := acked[len(acked)-1]
			got, err := strconv.ParseInt(strings.TrimSpace(h.ok("get", loadVar(prefix, k))), 10, 64)
			if err != nil || got < last {
				t.Fatalf("cycle %d: %s = %d after restart, but %d was acknowledged", cycle, loadVar(prefix, k), got, last)
			}
			if twin := strings.TrimSpace(h.ok("get", twinVar(prefix, k))); twin != strconv.FormatInt(got, 10) {
				t.Fatalf("cycle %d: %s = %d but its twin, set in the same sets, = %s", cycle, loadVar(prefix, k), got, twin)
			}
			hist := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(h.ok("history", loadVar(prefix, k))), "\n") {
				f := strings.Split(line, "\t")
				hist[f[len(f)-1]] = true
			}
			for _, v := range acked {
				if !hist[strconv.FormatInt(v, 10)] {
					t.Fatalf("cycle %d: acknowledged version %d of %s is not in its history", cycle, v, loadVar(prefix, k))
				}
			}
		}
		for _, inFlight := range []whenlua.Run{chatty, sleeper} {
			r, ok := h.runOf(inFlight.Serial)
			if !ok || r.State != whenlua.RunLost || r.End.IsZero() || r.Error == "" {
				t.Fatalf("cycle %d: run %d in flight at the kill is %+v after restart, want lost", cycle, inFlight.Serial, r)
			}
		}
		r, _ := h.runOf(sleeper.Serial)
		for _, r := range h.runsJSON("log") {
			if r.State == whenlua.RunRunning {
				t.Errorf("cycle %d: run %d of %s is in the log as running", cycle, r.Serial, r.Job)
			}
		}
		for _, r := range h.runsJSON("jobs") {
			if r.Start.Before(sleeper.Start) || r.Job == "sleeper" || r.Job == "chatty" {
				t.Errorf("cycle %d: run %d of %s from before the kill is among the running jobs", cycle, r.Serial, r.Job)
			}
		}
		t.Logf("cycle %d: %d acknowledged sets from %d clients, all there after kill -9; run %d lost (recorded pid %d, dir %q, error %q); its process %d alive: %v; its directory kept: %v",
			cycle, load.count(), clients, sleeper.Serial, r.PID, r.Dir, r.Error, sleeper.PID, processAlive(sleeper.PID), pathExists(sleeper.Dir))
	}
}

func pathExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// daemonLog returns what the detached daemon logged so far.
func (h *home) daemonLog() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "daemon.log"))
	return string(b)
}

// answers requires the daemon to be alive and answering `whenlua vars`
// after what it survived (a hung daemon never answers: the command's own
// deadline fails the test).
func (h *home) answers(after string) {
	h.t.Helper()
	if r := h.run("vars"); r.code != 0 || r.stderr != "" {
		h.t.Errorf("after %s, whenlua vars: %v", after, r)
	}
}

// R3 (host's TestRunawayLuaIsStoppedAtTheLimitAndOtherJobsKeepTheirSchedule
// covers top level, condition, pre and post in an engine): a runaway loop in
// each place a job file runs Lua, through the real daemon and its
// time limit. The daemon answers right after each, and the error, with
// file:line, is in `whenlua status`, `whenlua log`, the start command's
// message, or (on_load, on_unload) the daemon log. The daemon runs with a
// time limit of its own (--lua-timeout), passed on by `daemon start`, so
// that the test does not wait out the default limit six times.
func TestRunawayLuaInEachPlaceLeavesTheDaemonAnsweringAndTheErrorVisible(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("top.lua", "when('x', 'true')\nwhile true do end\n")
	h.writeJob("onload.lua", "when('false', 'true', {name='ol'})\non_load(function()\n  while true do end\nend)\n")
	h.writeJob("onunload.lua", "when('false', 'true', {name='ou'})\non_unload(function()\n  while true do end\nend)\n")
	h.writeJob("hooks.lua", `
when(function() if vars.spin then while true do end end return false end, "true", {name="cond"})
when("false", "true", {name="pre", pre=function() while true do end end})
when("false", "true", {name="post", post=function() while true do end end})
`)
	h.start("--lua-timeout", "500ms")
	h.answers("loading top.lua and onload.lua")
	jobs := h.dir + "/jobs/"

	st := h.ok("status")
	if want := jobs + "top.lua:2: time limit of 500ms exceeded"; !strings.Contains(st, want) {
		t.Errorf("top level: status does not show %s:\n%s", want, st)
	}
	if names := h.ok("names"); strings.Contains(names, "top.") || !strings.Contains(names, "ol\t") {
		t.Errorf("names after the runaway top level and on_load:\n%s", names)
	}
	if log := h.daemonLog(); !strings.Contains(log, "onload.lua:3:") {
		t.Errorf("on_load: daemon.log does not show onload.lua:3:\n%s", log)
	}

	h.ok("set", "--type", "bool", "spin=true")
	h.answers("a runaway condition")
	if st := h.ok("status"); !strings.Contains(st, "hooks.lua:2:") {
		t.Errorf("condition: status does not show hooks.lua:2:\n%s", st)
	}

	h.fails(1, []string{"start", "pre"}, "hooks.lua:3:")
	h.answers("a runaway pre")
	if runs := h.runsJSON("log", "pre"); len(runs) != 1 || runs[0].State != whenlua.RunRefused || !strings.Contains(runs[0].Error, "hooks.lua:3:") {
		t.Errorf("pre: log has %+v, want a refused run with an error at hooks.lua:3", runs)
	}

	post := h.startJob("post")
	var run whenlua.Run
	waitFor(t, "the run of post to be recorded", func() bool {
		var ok bool
		run, ok = h.runOf(post.Serial)
		return ok
	})
	h.answers("a runaway post")
	if !strings.Contains(run.Error, "hooks.lua:4:") {
		t.Errorf("post: log has %+v, want an error at hooks.lua:4", run)
	}
	if pathExists(post.Dir) {
		t.Errorf("post: the run directory %s stays after a runaway post", post.Dir)
	}

	if err := os.Remove(filepath.Join(h.dir, "jobs", "onunload.lua")); err != nil {
		t.Fatal(err)
	}
	// reload exits 1: top.lua still does not load.
	if r := h.run("reload"); strings.Contains(r.stdout, "onunload.lua") || !strings.Contains(r.stderr, "top.lua:2:") {
		t.Errorf("reload after removing onunload.lua: %v", r)
	}
	h.answers("a runaway on_unload")
	if names := h.ok("names"); strings.Contains(names, "ou\t") {
		t.Errorf("the removed file's job is still loaded:\n%s", names)
	}
	if log := h.daemonLog(); !strings.Contains(log, "onunload.lua:3:") {
		t.Errorf("on_unload: daemon.log does not show onunload.lua:3:\n%s", log)
	}
}

// A job file that allocates without bound, at the top level and in a
// condition, through the real daemon and its default memory limit (256 MiB
// of heap growth per call into Lua): each is stopped with a clear error at
// its file:line, the daemon answers right after, and it gives the memory
// back. The time limit is long, so that the memory limit is what stops the
// calls however busy the machine is.
func TestRunawayAllocationsLeaveTheDaemonAnsweringAndSmall(t *testing.T) {
	t.Parallel()
	// At 2 GiB, eight times the limit, the hoard raises an error of its
	// own: a memory limit that does not stop it fails the test at once.
	const hoard = "local t, i = {}, 0 while true do i = i + 1; t[i] = string.rep('x', 65536) .. i; if i == 32768 then error('2 GiB hoarded') end end"
	h := newHome(t)
	h.writeJob("hoard.lua", "when('x', 'true')\n"+hoard+"\n")
	h.writeJob("cond.lua", "when(function() if vars.grow then "+hoard+" end return false end, 'true', {name='grow'})\n")
	pid := h.start("--lua-timeout", "60s")
	h.answers("loading hoard.lua")
	jobs := h.dir + "/jobs/"
	want := "memory limit of 256 MiB exceeded (a runaway allocation?)"
	if st := h.ok("status"); !strings.Contains(st, jobs+"hoard.lua:2: "+want) {
		t.Errorf("top level: status does not show hoard.lua:2: %s\n%s", want, st)
	}
	h.ok("set", "--type", "bool", "grow=true")
	h.answers("a hoarding condition")
	if st := h.ok("status"); !strings.Contains(st, jobs+"cond.lua:1: "+want) {
		t.Errorf("condition: status does not show cond.lua:1: %s\n%s", want, st)
	}
	// Each call hoarded 256 MiB and more before it was stopped; the
	// daemon returns it to the system.
	if rss := rssKiB(t, pid); rss > 128<<10 {
		t.Errorf("daemon RSS %d KiB after the runaway allocations, want under 128 MiB", rss)
	}
}

// R4: a job that floods its output through the real daemon. The daemon's
// memory stays flat, the stored output is capped, the output size is
// counted, and the run's directory is removed.
func TestAJobFloodingItsOutputKeepsTheDaemonsMemoryFlat(t *testing.T) {
	t.Parallel()
	size := byVariant[int64](200_000_000, 1<<30)
	h := newHome(t)
	h.writeJob("flood.lua", `
when("false", "head -c $size /dev/zero", {name="flood"})
when("false", "echo warm", {name="warm"})
`)
	pid := h.start()
	h.ok("set", "--type", "int", fmt.Sprintf("size=%d", size))
	// Warm up: one small run, so that what a first run allocates once is
	// not counted.
	warm := h.startJob("warm")
	waitFor(t, "the warm-up run", func() bool { _, ok := h.runOf(warm.Serial); return ok })
	before := rssKiB(t, pid)

	flood := h.startJob("flood")
	var run whenlua.Run
	deadline := time.Now().Add(byVariant(time.Minute, 5*time.Minute))
	peak := before
	for {
		if r, ok := h.runOf(flood.Serial); ok {
			run = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flood of %d bytes has not finished", size)
		}
		peak = max(peak, rssKiB(t, pid))
		time.Sleep(50 * time.Millisecond)
	}
	after := rssKiB(t, pid)
	peak = max(peak, after)
	t.Logf("daemon RSS: %d KiB before, %d KiB at most while %d bytes flowed, %d KiB after", before, peak, size, after)
	const bound = 64 << 10 // KiB
	if peak-before > bound {
		t.Errorf("the daemon grew by %d KiB while the job wrote %d bytes (bound %d KiB)", peak-before, size, bound)
	}
	if run.State != whenlua.RunDone || run.Code != 0 || run.OutputSize != size {
		t.Errorf("flood run: state %s code %d output size %d, want done, 0, %d", run.State, run.Code, run.OutputSize, size)
	}
	out := h.ok("output", strconv.FormatUint(flood.Serial, 10))
	if len(out) == 0 || len(out) > 1<<20 {
		t.Errorf("whenlua output printed %d bytes of a %d-byte output, want a capped head and tail", len(out), size)
	}
	if pathExists(flood.Dir) {
		t.Errorf("the run directory %s is still there", flood.Dir)
	}
	h.answers("the flood")
}

// daemonCrash returns the fatal error of a daemon log and the frames of the
// goroutine that raised it, or the log's last lines.
func daemonCrash(log string) string {
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "fatal error") || strings.HasPrefix(l, "panic:") {
			return strings.Join(lines[i:min(len(lines), i+22)], "\n")
		}
	}
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}
