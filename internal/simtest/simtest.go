// Package simtest holds the job file that the tests of simulate, in host
// and on the command line, replay, how to read what its jobs print, and
// the reading of a whole stored history.
package simtest

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// Jobs exercise what a replay must get exactly right: changes, a
// threshold, a set of two variables at once, a whisper, a pre whose set is
// evaluated after the round that made its job due, and a post hook whose
// two sets are applied before either is evaluated. Each job echoes the
// variables its condition reads, so that its output shows the values that
// made it due (Line).
const Jobs = `
when('changes("x")', "echo x=$x", { name = "onx" })
when("x >= 6", "echo x=$x", { name = "high", post = function(r) set("a", vars.x) set("b", 2) end })
when('changes("a") and b == 2', "echo a=$a b=$b", { name = "pair" })
when("p == 1 and q == 1", "echo p=$p q=$q", { name = "both" })
when('changes("p") and q == 1', "echo p=$p q=$q", { name = "pq" })
when('changes("w")', "echo w=$w", { name = "onw" })
when("x >= 6", "echo x=$x", { name = "guarded", pre = function() set("seen", vars.x) return true end })
when('changes("seen")', "echo seen=$seen", { name = "onseen" })
`

// History reads every version hs keeps, in the order it gives them,
// failing t if the scan fails.
func History(t testing.TB, hs whenlua.HistoryScanner) []whenlua.VarVersion {
	t.Helper()
	var out []whenlua.VarVersion
	if err := hs.ScanHistory(context.Background(), func(v whenlua.VarVersion) error {
		out = append(out, v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Line is what a job of Jobs prints when due with values (a simulation's
// SimDue.Values): its condition's variables, sorted, as name=value.
func Line(values map[string]whenlua.Value) string {
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, n+"="+values[n].String())
	}
	return strings.Join(parts, " ")
}
