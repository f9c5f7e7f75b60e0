package persist

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

func run(serial uint64, job string, state whenlua.RunState) whenlua.Run {
	return whenlua.Run{
		Serial: serial, Job: job, File: "/jobs/" + job + ".lua", Trigger: "when", State: state,
		Start: at(time.Duration(serial) * time.Second), PID: 100 + int(serial), Code: -1,
	}
}

func TestARunRoundTripsWithItsOutputStoredApart(t *testing.T) {
	s := openTest(t, Options{})
	r := run(5, "ci", whenlua.RunRunning)
	commit(t, s, &Batch{Runs: []whenlua.Run{r}, Serial: 5})

	r.State, r.End, r.Code, r.Signal, r.Error = whenlua.RunDone, r.Start.Add(time.Minute), 0, "", ""
	r.Output, r.OutputSize = []byte("line 1\nline 2\n"), 14
	commit(t, s, &Batch{Runs: []whenlua.Run{r}})
	s = reopen(t, s)

	got, err := s.Run(5)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != whenlua.RunDone || string(got.Output) != string(r.Output) || got.OutputSize != 14 ||
		!got.Start.Equal(r.Start) || !got.End.Equal(r.End) || got.Job != "ci" || got.PID != r.PID {
		t.Errorf("got %#v", got)
	}
	list, err := s.Runs("", 0)
	if err != nil || len(list) != 1 {
		t.Fatal(list, err)
	}
	if list[0].Output != nil || list[0].OutputSize != 14 {
		t.Errorf("a listing carries output: %#v", list[0])
	}
}

func TestAnUnknownRunIsNotFound(t *testing.T) {
	s := openTest(t, Options{})
	if _, err := s.Run(99); !errors.Is(err, whenlua.ErrNotFound) {
		t.Fatalf("got %v", err)
	}
}

func TestRunsAreNewestFirstFilteredByJobAndLimited(t *testing.T) {
	s := openTest(t, Options{})
	b := &Batch{}
	for i := uint64(1); i <= 300; i++ { // crosses the 255/256 byte boundary of the key
		b.Runs = append(b.Runs, run(i, []string{"a", "b", "c"}[i%3], whenlua.RunDone))
	}
	commit(t, s, b)
	cases := []struct {
		job       string
		n         int
		wantLen   int
		wantFirst uint64
	}{
		{"", 0, 300, 300},
		{"", 5, 5, 300},
		{"a", 0, 100, 300},
		{"b", 0, 100, 298},
		{"b", 2, 2, 298},
		{"nobody", 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("job %q n %d", c.job, c.n), func(t *testing.T) {
			runs, err := s.Runs(c.job, c.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != c.wantLen {
				t.Fatalf("%d runs", len(runs))
			}
			for i, r := range runs {
				if c.job != "" && r.Job != c.job {
					t.Errorf("run %d of job %s", r.Serial, r.Job)
				}
				if i == 0 && r.Serial != c.wantFirst {
					t.Errorf("first %d, want %d", r.Serial, c.wantFirst)
				}
				if i > 0 && r.Serial >= runs[i-1].Serial {
					t.Errorf("serial %d after %d", r.Serial, runs[i-1].Serial)
				}
			}
		})
	}
}

func TestRunningRunsListsOnlyRunningOnes(t *testing.T) {
	s := openTest(t, Options{})
	commit(t, s, &Batch{Runs: []whenlua.Run{
		run(1, "a", whenlua.RunDone), run(2, "a", whenlua.RunRunning), run(3, "b", whenlua.RunRefused),
		run(4, "b", whenlua.RunRunning), run(5, "c", whenlua.RunLost), run(6, "c", whenlua.RunFailed),
	}})
	got, err := s.RunningRuns()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Serial != 4 || got[1].Serial != 2 {
		t.Fatalf("got %#v", got)
	}
	// The daemon marks them lost at start.
	for i := range got {
		got[i].State, got[i].Error = whenlua.RunLost, "daemon died"
	}
	commit(t, s, &Batch{Runs: got})
	if got, err := s.RunningRuns(); err != nil || len(got) != 0 {
		t.Fatalf("still running: %v, %v", got, err)
	}
}
