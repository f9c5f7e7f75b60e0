package main

import (
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
