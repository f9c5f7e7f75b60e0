//go:build linux

package main

// The full-disk part of the reliability suite: it mounts a small tmpfs, which
// only Linux (and root) can do here.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// newTmpfsHome returns a home on a tmpfs of size bytes, or skips the test
// when it cannot mount one (not root, no tmpfs).
func newTmpfsHome(t *testing.T, size string) *home {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the home (a full disk)")
	}
	parent, err := os.MkdirTemp("", "wlfull")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "h")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		os.RemoveAll(parent)
		t.Skipf("cannot mount a tmpfs of %s on %s: %v", size, dir, err)
	}
	h := &home{t: t, dir: dir}
	t.Cleanup(func() {
		h.kill()
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		os.RemoveAll(parent)
	})
	if err := os.MkdirAll(filepath.Join(dir, "jobs"), 0o700); err != nil {
		t.Fatal(err)
	}
	return h
}

// fillDisk writes path until the file system is full and returns its size.
func fillDisk(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	var n int64
	for {
		k, err := f.Write(chunk)
		n += int64(k)
		if err != nil {
			if !strings.Contains(err.Error(), "no space") {
				t.Fatalf("fill %s: %v", path, err)
			}
			return n
		}
	}
}

// R7: the disk fills up under a running daemon. A set fails with a clear
// one-line error and exit 1 and changes nothing; the daemon keeps serving
// reads; once space is freed, sets work again; and after a restart every
// acknowledged value is there.
func TestAFullDiskFailsSetsClearlyAndLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	// The store keeps room for the holes of badger's mapped logs (some
	// 50 MiB with its options): a smaller disk is full from the start.
	h := newTmpfsHome(t, "96m")
	h.writeJob("j.lua", `when("false", "echo hello", {name="j"})`)
	r := h.run("daemon", "start")
	if r.code != 0 {
		t.Fatalf("the daemon does not start on a 96 MiB home: %v\nits log:\n%s", r, h.daemonLog())
	}
	pid := h.pid()
	c := h.client()
	ctx := context.Background()
	acked := map[string][]string{} // name -> values acknowledged, in order
	failed := map[string]string{}  // name -> the value of a failed set after the last acknowledged one
	value := strings.Repeat("v", 512)
	set := func(name, v string) error {
		_, err := c.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: name, Value: whenlua.String(v)}}})
		if err == nil {
			acked[name] = append(acked[name], v)
			delete(failed, name)
		} else {
			failed[name] = v // not acknowledged: it may or may not have been applied
		}
		return err
	}
	for i := range 100 {
		if err := set(fmt.Sprintf("before%d", i%10), fmt.Sprintf("%d-%s", i, value)); err != nil {
			t.Fatalf("set %d before the disk is full: %v", i, err)
		}
	}

	filler := filepath.Join(h.dir, "filler")
	t.Logf("filled the home with %d bytes", fillDisk(t, filler))
	// What the store had buffered may take a few more sets; then sets
	// must fail, and keep failing while the disk stays full.
	var setErr error
	for i := 0; i < 1000 && setErr == nil; i++ {
		setErr = set("during", fmt.Sprintf("%d-%s", i, value))
	}
	if setErr == nil {
		t.Fatalf("1000 sets of %d bytes succeeded on a full disk", len(value))
	}
	t.Logf("%d sets acknowledged on the full disk before the first failure: %v", len(acked["during"]), setErr)
	time.Sleep(300 * time.Millisecond) // a daemon that fails may take a moment to die
	died := !processAlive(pid) || h.pid() != pid
	if died {
		waitFor(t, "the failed daemon to exit", func() bool { return !processAlive(pid) })
		t.Errorf("the daemon died when the disk filled up: %s", daemonCrash(h.daemonLog()))
	} else {
		r = h.fails(1, []string{"set", "full=1"}, "not stored")
		if !strings.Contains(r.stderr, "disk full") && !strings.Contains(r.stderr, "no space") {
			t.Errorf("whenlua set on a full disk does not say the disk is full: %q", r.stderr)
		}
		t.Logf("whenlua set on a full disk: %s", strings.TrimSpace(r.stderr))
		if vars := h.ok("vars"); strings.Contains(vars, "full=") {
			t.Errorf("a failed set stored its value:\n%s", vars)
		}
		h.answers("a failed set on a full disk")
		// A run starts only once its record is committed: on a full disk
		// start must fail, not report a run that nothing records.
		if r := h.run("start", "j"); r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
			time.Sleep(300 * time.Millisecond)
			t.Errorf("whenlua start on a full disk: %v, want exit 1 and one line (running jobs then: %s; log: %s)",
				r, strings.TrimSpace(h.ok("jobs", "--json")), strings.TrimSpace(h.ok("log", "--json")))
		} else {
			t.Logf("whenlua start on a full disk: %s", strings.TrimSpace(r.stderr))
		}
		if got := h.ok("get", "before9"); got != acked["before9"][len(acked["before9"])-1]+"\n" {
			t.Errorf("get before9 on a full disk: %q", got)
		}
		h.ok("status")
		h.ok("history", "before1")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if died {
		if r := h.run("daemon", "start"); r.code != 0 {
			t.Fatalf("the daemon does not start again after a full disk: %v\nits log:\n%s", r, h.daemonLog())
		}
		pid = h.pid()
	}
	var afterErr error
	waitFor(t, "a set to work again after space was freed", func() bool {
		afterErr = set("after", "1")
		return afterErr == nil
	})
	h.ok("set", "after_cli=1")
	acked["after_cli"] = []string{"1"}
	started := h.startJob("j")
	waitFor(t, "a run after space was freed", func() bool { _, ok := h.runOf(started.Serial); return ok })
	if out := h.ok("output", strconv.FormatUint(started.Serial, 10)); out != "hello\n" {
		t.Errorf("the output of a run after space was freed: %q", out)
	}
	if !processAlive(pid) {
		t.Fatalf("the daemon died after the disk emptied: %s", daemonCrash(h.daemonLog()))
	}

	h.ok("daemon", "stop")
	if r := h.run("daemon", "start"); r.code != 0 {
		t.Fatalf("the daemon does not start again after a full disk: %v\nits log:\n%s", r, h.daemonLog())
	}
	for name, vs := range acked {
		last := vs[len(vs)-1]
		if got := h.ok("get", name); got != last+"\n" && (failed[name] == "" || got != failed[name]+"\n") {
			t.Errorf("after a restart %s = %.20q..., want %.20q... (the last acknowledged value) or %.20q... (a set that failed after it)", name, got, last, failed[name])
		}
		hist := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(h.ok("history", name)), "\n") {
			f := strings.SplitN(line, "\t", 3)
			hist[f[len(f)-1]] = true
		}
		for _, v := range vs {
			if !hist[v] {
				t.Errorf("after a restart the acknowledged version %.20q... of %s is not in its history", v, name)
			}
		}
	}
	if !died && strings.Contains(h.daemonLog(), "fatal error") {
		t.Errorf("the daemon log tells of a crash: %s", daemonCrash(h.daemonLog()))
	}
}
