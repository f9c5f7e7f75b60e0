package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host"
	"github.com/whenlua/whenlua/internal/simtest"
)

// simulation runs `whenlua simulate --json` with args and decodes it.
func (h *home) simulation(args ...string) host.Simulation {
	h.t.Helper()
	var sim host.Simulation
	out := h.ok(append([]string{"simulate", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &sim); err != nil {
		h.t.Fatalf("simulate --json printed %q: %v", out, err)
	}
	return sim
}

// sameAsLive requires the simulation's dues to be the live runs, in order,
// each due with the values the run printed.
func sameAsLive(t *testing.T, what string, sim host.Simulation, live []whenlua.Run, outputs map[uint64]string) {
	t.Helper()
	var liveJobs, simJobs []string
	for _, r := range live {
		liveJobs = append(liveJobs, r.Job)
	}
	for _, d := range sim.Due {
		simJobs = append(simJobs, d.Job)
	}
	if !slices.Equal(liveJobs, simJobs) {
		t.Fatalf("%s: the daemon ran %v\nthe simulation gives %v", what, liveJobs, simJobs)
	}
	for i, r := range live {
		if got, want := outputs[r.Serial], simtest.Line(sim.Due[i].Values); got != want {
			t.Errorf("%s: run %d of %s printed %q; the simulation says it was due with %q", what, r.Serial, r.Job, got, want)
		}
		if d := sim.Due[i]; d.PreNotConsulted != (r.Job == "guarded") || d.Time.After(r.Start) {
			t.Errorf("%s: due %+v for run %+v", what, d, r)
		}
	}
}

func TestSimulateGivesTheRunsTheDaemonGave(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("live.lua", simtest.Jobs)
	file := filepath.Join(h.dir, "jobs", "live.lua")
	if err := os.MkdirAll(filepath.Join(h.dir, "jobs", "lib"), 0o700); err != nil {
		t.Fatal(err)
	}
	h.writeJob("lib/limits.lua", "return { high = 8 }")
	h.start()
	idle := func() {
		waitFor(t, "no running job", func() bool { return strings.TrimSpace(h.ok("jobs")) == "" })
	}
	for _, args := range [][]string{
		{"set", "--type", "int", "x=1"},
		{"set", "--type", "int", "x=6"},
		{"set", "--type", "int", "p=1", "q=1"},
		{"whisper", "w=1"},
		{"set", "--type", "int", "x=7"},
		{"set", "w=1"},
		{"set", "--type", "int", "x=2"},
		{"set", "--type", "int", "x=9"},
		{"set", "--type", "int", "p=1", "q=1"},
		{"set", "--type", "int", "p=0"},
	} {
		h.ok(args...)
		idle() // post hooks have run and their sets are stored
	}
	var runs []whenlua.Run
	if err := json.Unmarshal([]byte(h.ok("log", "--json")), &runs); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(runs)
	outputs := map[uint64]string{}
	for _, r := range runs {
		outputs[r.Serial] = strings.TrimSpace(h.ok("output", strconv.FormatUint(r.Serial, 10)))
	}
	if len(runs) != 17 {
		t.Fatalf("the daemon ran %d jobs: %+v", len(runs), runs)
	}

	sameAsLive(t, "through the daemon", h.simulation(file), runs, outputs)
	r := h.run("simulate", file)
	text := r.stdout
	// At the load, x is unset: the two conditions that compare it raise,
	// in the daemon as in the replay, and the replay says so.
	if r.code != 0 || !strings.Contains(r.stderr, "guarded: 1 condition errors, the first at ") ||
		!strings.Contains(r.stderr, "high: 1 condition errors, the first at ") || strings.Count(r.stderr, "\n") != 2 ||
		!strings.Contains(r.stderr, "live.lua:3: attempt to compare number with nil (unset: x)") {
		t.Errorf("simulate: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(text, "\tguarded\twould be due (pre not consulted)\tcli\tx=6\n") || !strings.Contains(text, "\tpair\twould be due\tjob high post\ta=6 b=2\n") {
		t.Errorf("simulate printed:\n%s", text)
	}
	h.fails(1, []string{"simulate", "--store", filepath.Join(h.dir, "state"), file}, "in use", "copy the state directory")

	// A tuned copy outside the jobs directory, with the jobs directory's modules.
	tuned := filepath.Join(t.TempDir(), "tuned.lua")
	if err := os.WriteFile(tuned, []byte(`local limits = require("limits")
when("x >= " .. limits.high, "true", { name = "tuned" })`), 0o600); err != nil {
		t.Fatal(err)
	}
	if d := h.simulation(tuned).Due; len(d) != 1 || d[0].Job != "tuned" || d[0].Values["x"].I != 9 {
		t.Errorf("the tuned copy would be due %+v, want once, at x=9", d)
	}

	// A copy taken while the daemon runs is recovered in a copy of its own.
	cp := filepath.Join(t.TempDir(), "state")
	copyDir(t, filepath.Join(h.dir, "state", "db"), filepath.Join(cp, "db"))
	sameAsLive(t, "from a copy of the running daemon's store", h.simulation("--store", cp, file), runs, outputs)

	h.ok("daemon", "stop")
	sameAsLive(t, "from the stopped daemon's store", h.simulation("--store", filepath.Join(h.dir, "state"), file), runs, outputs)

	// The window: history before --since builds the state unreported.
	// Each set waited for the runs before it: the run before onw's ended
	// before the set that made onw due.
	cut := slices.IndexFunc(runs, func(r whenlua.Run) bool { return r.Job == "onw" })
	sim := h.simulation("--store", filepath.Join(h.dir, "state"), "--since", runs[cut-1].End.Format(time.RFC3339Nano), file)
	sameAsLive(t, "from onw's run on", sim, runs[cut:], outputs)
	h.fails(2, []string{"simulate", "--since", "yesterday", file}, "--since")
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := copyFiles(src, dst); err != nil {
		t.Fatal(err)
	}
}
