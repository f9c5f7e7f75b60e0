package host

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/simtest"
)

// A condition the analysis cannot see into (a function of a lib module)
// may read any variable; a simulation reports the values its evaluation
// read, as `why` does, not every variable: with many variables it used to
// keep a copy of all of them for each time the job was due.
func TestASimulationReportsTheValuesAnOpaqueConditionRead(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, filepath.Join(p.LibDir, "chk.lua"), `
local M = {}
function M.hot() return changes("t") end
return M
`)
	file := filepath.Join(p.JobsDir, "c.lua")
	writeFile(t, file, `
local chk = require("chk")
when(chk.hot, "true", { name = "hot" })
`)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	clock := NewFakeClock(t0)
	te := openTestEngine(t, p, clock)
	var others []any
	for i := range 20 {
		others = append(others, "v"+string(rune('a'+i)), i)
	}
	te.set(others...)
	for i := 1; i <= 3; i++ {
		clock.Advance(time.Minute)
		if got := te.set("t", i); strings.Join(got, ",") != "hot" {
			t.Fatalf("set t=%d triggered %v", i, got)
		}
	}
	sim, err := Simulate(context.Background(), SimulateOptions{File: file, LibDir: p.LibDir, Until: t0.Add(time.Hour)}, scanAll(t, te.store))
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.Due) != 3 {
		t.Fatalf("due %d times, want 3: %+v", len(sim.Due), sim.Due)
	}
	for i, d := range sim.Due {
		if want := "t=" + whenlua.Int(int64(i+1)).String(); simtest.Line(d.Values) != want {
			t.Errorf("due %d: values %s, want %s", i, simtest.Line(d.Values), want)
		}
	}
}
