package host

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/simtest"
)

// simJobs are simtest.Jobs and an every-job, whose scheduled times a
// simulation lists.
const simJobs = simtest.Jobs + `every("10 minutes", "true", { name = "tick" })
`

// scanAll reads every version the engine's store keeps.
var scanAll = simtest.History

func TestASimulationGivesTheRunsTheEngineStarted(t *testing.T) {
	p := testPaths(t, t.TempDir())
	file := filepath.Join(p.JobsDir, "sim.lua")
	writeFile(t, file, simJobs)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	clock := NewFakeClock(t0)
	te := openTestEngine(t, p, clock)
	steps := []struct {
		mode whenlua.Mode
		kv   []any
	}{
		{whenlua.ModeSet, []any{"x", 1}},
		{whenlua.ModeSet, []any{"x", 6}},
		{whenlua.ModeSet, []any{"p", 1, "q", 1}},
		{whenlua.ModeWhisper, []any{"w", 1}},
		{whenlua.ModeSet, []any{"x", 7}},
		{whenlua.ModeSet, []any{"w", 1}},
		{whenlua.ModeSet, []any{"x", 2}},
		{whenlua.ModeSet, []any{"x", 9}},
		{whenlua.ModeSet, []any{"p", 1, "q", 1}},
		{whenlua.ModeSet, []any{"p", 0}},
	}
	for i, s := range steps {
		clock.Set(t0.Add(time.Duration(i+1) * time.Minute))
		te.setMode(s.mode, s.kv...)
		te.waitIdle() // post hooks have run and their sets are stored
	}
	var live []whenlua.Run
	for _, r := range te.runs("") {
		if r.Trigger == "when" {
			live = append(live, r)
		}
	}
	sim, err := Simulate(context.Background(), SimulateOptions{File: file, LibDir: p.LibDir, Until: t0.Add(time.Hour)}, scanAll(t, te.store))
	if err != nil {
		t.Fatal(err)
	}
	var liveJobs, simJobs []string
	for _, r := range live {
		liveJobs = append(liveJobs, r.Job)
	}
	for _, d := range sim.Due {
		simJobs = append(simJobs, d.Job)
	}
	if !slices.Equal(liveJobs, simJobs) {
		t.Fatalf("the daemon ran %v\nthe simulation gives %v", liveJobs, simJobs)
	}
	if !slices.Contains(simJobs, "pair") || !slices.Contains(simJobs, "onw") || !slices.Contains(simJobs, "both") {
		t.Fatalf("the history does not exercise every job: %v", simJobs)
	}
	for i, r := range live {
		run, err := te.Run(context.Background(), r.Serial)
		if err != nil {
			t.Fatal(err)
		}
		d := sim.Due[i]
		if got, want := strings.TrimSpace(string(run.Output)), simtest.Line(d.Values); got != want {
			t.Errorf("run %d of %s printed %q; the simulation says it was due with %q", r.Serial, r.Job, got, want)
		}
		if d.Time.After(r.Start) || d.PreNotConsulted != (r.Job == "guarded") {
			t.Errorf("due %+v for run %+v", d, r)
		}
	}
	if len(sim.Scheduled) != 1 || sim.Scheduled[0].Job != "tick" || len(sim.Scheduled[0].Times) != 6 || sim.Scheduled[0].More {
		t.Errorf("scheduled = %+v", sim.Scheduled)
	}
}

// version is one stored version for the table tests: its variable, value,
// minutes after simEpoch, and origin (cli when empty), each its own set.
type version struct {
	name   string
	value  any
	minute int
	origin string
}

var simEpoch = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func historyOf(vs ...version) []whenlua.VarVersion {
	var out []whenlua.VarVersion
	for i, v := range vs {
		origin := v.origin
		if origin == "" {
			origin = whenlua.OriginCLI
		}
		out = append(out, whenlua.VarVersion{Name: v.name, Version: whenlua.Version{
			Value: val(v.value), Time: simEpoch.Add(time.Duration(v.minute) * time.Minute), Origin: origin,
			Commit: uint64(i + 1), Mark: whenlua.SetMark{Set: 1, Queued: true, Whisper: origin == whenlua.OriginWhisper},
		}})
	}
	return out
}

// unmarked makes hist look like versions an older whenlua stored, and
// its migration rewrote in one commit.
func unmarked(hist []whenlua.VarVersion) []whenlua.VarVersion {
	for i := range hist {
		hist[i].Commit, hist[i].Mark = 1, whenlua.SetMark{}
	}
	return hist
}

func TestSimulateEdgeCases(t *testing.T) {
	type due struct {
		job    string
		minute int
		by     string
	}
	tests := []struct {
		name         string
		src          string
		hist         []whenlua.VarVersion
		since, until int // minutes after simEpoch; 0: none
		want         []due
	}{
		{
			name: "a hold runs out at the recorded time plus the hold",
			src:  `when("load > 4", "true", { name = "busy", hold = "5m" })`,
			hist: historyOf(version{"load", 5, 0, ""}, version{"load", 6, 3, ""}, version{"load", 1, 20, ""}),
			want: []due{{"busy", 5, "hold"}},
		},
		{
			name: "a false in between restarts the hold",
			src:  `when("load > 4", "true", { name = "busy", hold = "5m" })`,
			hist: historyOf(version{"load", 5, 0, ""}, version{"load", 1, 3, ""}, version{"load", 5, 4, ""}),
			want: []due{{"busy", 9, "hold"}},
		},
		{
			name:  "a hold still running at the end of the window is not due",
			src:   `when("load > 4", "true", { name = "busy", hold = "5m" })`,
			hist:  historyOf(version{"load", 5, 0, ""}, version{"load", 1, 3, ""}, version{"load", 5, 4, ""}),
			until: 8,
		},
		{
			name:  "history before since builds the state without being reported",
			src:   `when("x >= 6", "true", { name = "high" })`,
			hist:  historyOf(version{"x", 7, 1, ""}, version{"x", 9, 3, ""}, version{"x", 1, 4, ""}, version{"x", 8, 5, ""}),
			since: 2,
			want:  []due{{"high", 5, "cli"}},
		},
		{
			name:  "versions after until are left out",
			src:   `when("x >= 6", "true", { name = "high" })`,
			hist:  historyOf(version{"x", 7, 1, ""}, version{"x", 1, 4, ""}, version{"x", 8, 5, ""}),
			until: 4,
			want:  []due{{"high", 1, "cli"}},
		},
		{
			name: "a whisper evaluates nothing, and changes fires at the next evaluation",
			src:  `when('changes("w")', "true", { name = "onw" })`,
			hist: historyOf(version{"w", 1, 1, ""}, version{"w", 2, 2, "whisper"}, version{"w", 2, 3, ""}, version{"w", 2, 4, ""}),
			want: []due{{"onw", 1, "cli"}, {"onw", 3, "cli"}},
		},
		{
			name: "reloaded() is true at the load only",
			src:  `when("reloaded()", "true", { name = "atload" })`,
			hist: historyOf(version{"x", 1, 1, ""}, version{"x", 2, 2, ""}),
			want: []due{{"atload", 1, "load"}},
		},
		{
			name: "versions stored without marks are replayed in the order of their times",
			src:  `when("x == 1 and y == 1", "true", { name = "both" })`,
			hist: unmarked(historyOf(version{"x", 1, 1, ""}, version{"x", 0, 3, ""}, version{"y", 1, 2, ""})),
			want: []due{{"both", 2, "cli"}},
		},
		{
			name: "a set by a post hook is replayed from the record",
			src:  `when("done == 1", "true", { name = "after" })`,
			hist: historyOf(version{"done", 1, 1, "job build post"}),
			want: []due{{"after", 1, "job build post"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "t.lua")
			writeFile(t, file, tt.src)
			opts := SimulateOptions{File: file, Now: func() time.Time { return simEpoch.Add(time.Hour) }}
			if tt.since != 0 {
				opts.Since = simEpoch.Add(time.Duration(tt.since) * time.Minute)
			}
			if tt.until != 0 {
				opts.Until = simEpoch.Add(time.Duration(tt.until) * time.Minute)
			}
			sim, err := Simulate(context.Background(), opts, tt.hist)
			if err != nil {
				t.Fatal(err)
			}
			var got []due
			for _, d := range sim.Due {
				got = append(got, due{d.Job, int(d.Time.Sub(simEpoch) / time.Minute), d.By})
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("due %v, want %v", got, tt.want)
			}
		})
	}
}

// Two sets of one commit, the second applied before the first's round (as
// a post hook's two sets are): the round sees both values. Replayed one
// after the other, changes("a") would be spent before b is 2.
func TestSetsOfOneCommitAreEvaluatedInTheEngineOrder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.lua")
	writeFile(t, file, `when('changes("a") and b == 2', "true", { name = "pair" })`)
	mk := func(name string, v int64, m whenlua.SetMark) whenlua.VarVersion {
		return whenlua.VarVersion{Name: name, Version: whenlua.Version{Value: whenlua.Int(v), Time: simEpoch, Origin: "job high post", Commit: 7, Mark: m}}
	}
	for _, tt := range []struct {
		name   string
		rounds int
		want   int
	}{
		{"b applied before a's round", 0, 1},
		{"b applied after a's round", 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hist := []whenlua.VarVersion{
				mk("b", 2, whenlua.SetMark{Set: 2, Rounds: tt.rounds, Queued: true}),
				mk("a", 1, whenlua.SetMark{Set: 1, Queued: true}),
			}
			sim, err := Simulate(context.Background(), SimulateOptions{File: file}, hist)
			if err != nil {
				t.Fatal(err)
			}
			if len(sim.Due) != tt.want {
				t.Fatalf("due %+v, want %d", sim.Due, tt.want)
			}
		})
	}
}

func TestSimulateListsScheduledTimesUpToTheCap(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.lua")
	writeFile(t, file, `every("second", "true", { name = "fast" })
cron("0 * * * *", "true", { name = "hourly" })`)
	sim, err := Simulate(context.Background(), SimulateOptions{File: file, Since: simEpoch, Until: simEpoch.Add(3 * time.Hour), MaxTimes: 50}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.Scheduled) != 2 {
		t.Fatalf("scheduled = %+v", sim.Scheduled)
	}
	fast, hourly := sim.Scheduled[0], sim.Scheduled[1]
	if fast.Job != "fast" || len(fast.Times) != 50 || !fast.More || !fast.Times[0].Equal(simEpoch) {
		t.Errorf("fast: %d times from %v, more %v", len(fast.Times), fast.Times[0], fast.More)
	}
	if hourly.Job != "hourly" || len(hourly.Times) != 4 || hourly.More {
		t.Errorf("hourly: %+v", hourly)
	}
}

func TestSimulateReportsALoadErrorAsFileLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.lua")
	writeFile(t, file, "when(\"x > 1\", \"true\")\nwhen(\n")
	_, err := Simulate(context.Background(), SimulateOptions{File: file}, nil)
	if err == nil || !strings.Contains(err.Error(), "bad.lua:") {
		t.Fatalf("err = %v", err)
	}
}

// Sets from several clients at once share commits (group commit): each is
// applied and evaluated in turn, and the replay does the same from the
// marks.
func TestASimulationOfConcurrentSetsGivesTheRunsTheEngineStarted(t *testing.T) {
	p := testPaths(t, t.TempDir())
	file := filepath.Join(p.JobsDir, "sim.lua")
	writeFile(t, file, `
when('changes("x")', "true", { name = "onx" })
when("x >= 6", "true", { name = "high" })
when('x == y', "true", { name = "same" })
`)
	te := openTestEngine(t, p, NewFakeClock(simEpoch))
	const clients, sets = 4, 30
	done := make(chan error, clients)
	for c := range clients {
		go func() {
			for i := range sets {
				as := []whenlua.Assignment{{Name: "x", Value: whenlua.Int(int64((c + i) % 9))}}
				if i%3 == 0 {
					as = append(as, whenlua.Assignment{Name: "y", Value: whenlua.Int(int64(i % 9))})
				}
				if _, err := te.Set(context.Background(), whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: as}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range clients {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	te.waitIdle()
	hist := scanAll(t, te.store)
	grouped := 0
	for _, v := range hist {
		if v.Mark.Set > 1 {
			grouped++
		}
	}
	t.Logf("%d of %d versions were stored with other sets in one commit", grouped, len(hist))
	sim, err := Simulate(context.Background(), SimulateOptions{File: file}, hist)
	if err != nil {
		t.Fatal(err)
	}
	live := te.runs("")
	if len(live) != len(sim.Due) {
		t.Fatalf("the daemon ran %d jobs, the simulation gives %d", len(live), len(sim.Due))
	}
	// Only the jobs are compared: a run's environment holds the values
	// when its process starts, after the whole group was applied.
	for i, r := range live {
		if d := sim.Due[i]; d.Job != r.Job {
			t.Fatalf("run %d: the daemon ran %s; the simulation gives %s", i, r.Job, d.Job)
		}
	}
}

// BenchmarkSimulate replays a history of 10,000 sets, each of one variable
// of ten, through a file of ten when-jobs.
func BenchmarkSimulate(b *testing.B) {
	file := filepath.Join(b.TempDir(), "b.lua")
	var src strings.Builder
	for i := range 10 {
		src.WriteString("when('changes(\"v" + strconv.Itoa(i) + "\") and v" + strconv.Itoa(i) + " >= 5', \"true\")\n")
	}
	if err := os.WriteFile(file, []byte(src.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	var hist []whenlua.VarVersion
	for i := range 10000 {
		hist = append(hist, whenlua.VarVersion{Name: "v" + strconv.Itoa(i%10), Version: whenlua.Version{
			Value: whenlua.Int(int64(i % 7)), Time: simEpoch.Add(time.Duration(i) * time.Second), Origin: whenlua.OriginCLI,
			Commit: uint64(i + 1), Mark: whenlua.SetMark{Set: 1, Queued: true},
		}})
	}
	b.ResetTimer()
	for range b.N {
		sim, err := Simulate(context.Background(), SimulateOptions{File: file}, hist)
		if err != nil || len(sim.Due) == 0 {
			b.Fatal(err, sim)
		}
	}
}
