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

// A condition that raises in the replay is counted, with its first error,
// so that a job that never evaluated cleanly is not shown as never due.
func TestASimulationCountsConditionErrors(t *testing.T) {
	p := testPaths(t, t.TempDir())
	file := filepath.Join(p.JobsDir, "e.lua")
	writeFile(t, file, `when("temp >= 1 and nope >= 1", "true", { name = "broken" })
when("temp >= 2", "true", { name = "fine" })
`)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	clock := NewFakeClock(t0)
	te := openTestEngine(t, p, clock)
	for i := 1; i <= 3; i++ {
		clock.Advance(time.Minute)
		te.set("temp", i)
	}
	sim, err := Simulate(context.Background(), SimulateOptions{File: file, LibDir: p.LibDir, Until: t0.Add(time.Hour)}, scanAll(t, te.store))
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.Due) != 1 || sim.Due[0].Job != "fine" {
		t.Fatalf("due %+v, want fine once", sim.Due)
	}
	// The load's evaluations (temp unset, at the first version's time)
	// raise for both jobs; broken's raise again at each set (the fixpoint
	// may evaluate a job more than once per set).
	errs := map[string]SimError{}
	for _, e := range sim.Errors {
		errs[e.Job] = e
	}
	first := t0.Add(time.Minute)
	if e := errs["broken"]; len(errs) != 2 || e.Count < 4 || !e.First.Equal(first) || !strings.Contains(e.Error, "e.lua:1: attempt to compare number with nil (unset: temp)") {
		t.Errorf("errors %+v, want broken at least 4 times from %s, with file:line", sim.Errors, first)
	}
	if e := errs["fine"]; e.Count != 1 || !strings.Contains(e.Error, "e.lua:2:") {
		t.Errorf("fine's errors %+v, want the load's one", e)
	}
}
