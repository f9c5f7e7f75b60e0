package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A damaged store makes `daemon start` and `daemon run` refuse, in one line
// naming the file and what to do, instead of starting with what badger
// could read.
func TestADamagedStoreIsRefusedByDaemonStartAndRun(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	args := []string{"set", "--type", "int"}
	for i := range 234 {
		args = append(args, fmt.Sprintf("v%03d=%d", i, i))
	}
	h.ok(args...)
	h.ok("daemon", "stop") // badger writes its memtable to a table
	tables, _ := filepath.Glob(filepath.Join(h.dir, "state", "db", "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table after the daemon stopped")
	}
	sst := tables[len(tables)-1]
	b, err := os.ReadFile(sst)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x5a
	if err := os.WriteFile(sst, b, 0o600); err != nil {
		t.Fatal(err)
	}

	r := h.fails(1, []string{"daemon", "start"}, sst, "restore")
	t.Logf("daemon start: %s", r.stderr)
	r = h.run("daemon", "run")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code != 1 || !strings.HasPrefix(last, "whenlua: ") || !strings.Contains(last, sst) || !strings.Contains(last, "restore") {
		t.Errorf("daemon run: %v, want exit 1 and a last line naming %s", r, sst)
	}
	if h.pid() != 0 {
		t.Error("a daemon runs on the damaged store")
	}
}

// A value log cut short: `daemon start` refuses and offers --recover, which
// starts the daemon without what cannot be read, logged, and keeps the rest.
func TestDaemonStartRecoverDropsWhatCannotBeRead(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	h.ok("set", "small=1", "big="+strings.Repeat("b", 2048))
	h.ok("daemon", "stop")
	vlog := filepath.Join(h.dir, "state", "db", "000001.vlog")
	if err := os.Truncate(vlog, 20); err != nil {
		t.Fatal(err)
	}
	h.fails(1, []string{"daemon", "start"}, vlog, "--recover")
	h.ok("daemon", "start", "--recover")
	if got := h.ok("get", "small"); got != "1\n" {
		t.Errorf("get small after --recover: %q", got)
	}
	h.fails(1, []string{"get", "big"})
	log, err := os.ReadFile(filepath.Join(h.dir, "daemon.log"))
	if err != nil || !strings.Contains(string(log), "dropped what could not be read") || !strings.Contains(string(log), "variable big") {
		t.Errorf("daemon.log does not say what was dropped: %v\n%s", err, log)
	}
}
