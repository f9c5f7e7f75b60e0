package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/whenlua/whenlua/host"
	"github.com/whenlua/whenlua/persist"
)

// The help shows the store's retention defaults and the engine's
// --max-runs; the daemon's program applies persist's and host's own.
func TestTheRetentionDefaultsInTheHelpAreTheStoresOwn(t *testing.T) {
	if defaultHistoryKeep != persist.DefaultHistoryKeep || defaultRunsKeep != persist.DefaultRunsKeep {
		t.Errorf("help shows --history-keep %d --runs-keep %d, the store keeps %d and %d",
			defaultHistoryKeep, defaultRunsKeep, persist.DefaultHistoryKeep, persist.DefaultRunsKeep)
	}
	if defaultMaxRuns != host.DefaultMaxRuns {
		t.Errorf("help shows --max-runs %d, the engine runs %d", defaultMaxRuns, host.DefaultMaxRuns)
	}
}

// The commands a user types start without the daemon's packages: their
// package initialisation would be paid at every start.
func TestTheClientDoesNotLinkTheDaemonsPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, heavy := range []string{"github.com/whenlua/whenlua/host", "github.com/whenlua/whenlua/persist", "github.com/dgraph-io/"} {
			if strings.HasPrefix(pkg, heavy) {
				t.Errorf("whenlua links %s", pkg)
			}
		}
	}
}

// Without the daemon's program beside it or on $PATH, `daemon run` and
// `daemon start` say what is missing and where it was looked for.
func TestAMissingDaemonProgramIsNamed(t *testing.T) {
	dir := t.TempDir()
	alone := filepath.Join(dir, "whenlua")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"daemon", "run"}, {"daemon", "start"}} {
		cmd := exec.Command(alone, append([]string{"--home", filepath.Join(dir, "h")}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		r := runCmd(t, cmd)
		want := "whenlua: the daemon's program whenlua-daemon is neither in " + dir + " nor on $PATH"
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("whenlua %s without whenlua-daemon: %v, want %q", strings.Join(args, " "), r, want)
		}
	}
}
