package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/whenlua/whenlua/persist"
)

// The help shows the store's retention defaults; the daemon's program
// applies persist's own.
func TestTheRetentionDefaultsInTheHelpAreTheStoresOwn(t *testing.T) {
	if defaultHistoryKeep != persist.DefaultHistoryKeep || defaultRunsKeep != persist.DefaultRunsKeep {
		t.Errorf("help shows --history-keep %d --runs-keep %d, the store keeps %d and %d",
			defaultHistoryKeep, defaultRunsKeep, persist.DefaultHistoryKeep, persist.DefaultRunsKeep)
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
