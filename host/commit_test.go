package host

import (
	"fmt"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

func TestSplitBatchKeepsTheVariablesTogetherAndEachPartSmall(t *testing.T) {
	for _, tc := range []struct {
		name         string
		vars, states int
		runs         int
		nameLen      int
		wantParts    int
	}{
		{"a small step is one transaction", 3, 10, 2, 8, 1},
		{"twenty thousand states", 1, 20000, 1, 8, 10},
		{"ten thousand runs", 1, 0, 10000, 8, 15},
		{"long job names split by size", 1, 1000, 0, 4000, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &whenlua.Batch{Serial: 7, JobStates: map[string]*whenlua.JobState{}}
			for i := range tc.vars {
				b.Vars = append(b.Vars, whenlua.VarChange{Name: fmt.Sprintf("v%d", i), Value: whenlua.Int(int64(i))})
			}
			pad := strings.Repeat("x", tc.nameLen)
			for i := range tc.states {
				b.JobStates[fmt.Sprintf("%s%d", pad, i)] = &whenlua.JobState{Cond: "x", Evaluated: true}
			}
			for i := range tc.runs {
				b.Runs = append(b.Runs, whenlua.Run{Serial: uint64(i + 1), Job: "j", State: whenlua.RunRunning})
			}
			parts := splitBatch(b)
			if len(parts) != tc.wantParts {
				t.Fatalf("%d parts, want %d", len(parts), tc.wantParts)
			}
			if len(parts[0].Vars) != tc.vars || parts[0].Serial != 7 {
				t.Fatalf("first part has %d variables and serial %d, want all %d and 7", len(parts[0].Vars), parts[0].Serial, tc.vars)
			}
			states, runs, stateSeen := map[string]bool{}, 0, false
			for i, p := range parts {
				if i > 0 && (len(p.Vars) != 0 || p.Serial != 0) {
					t.Fatalf("part %d holds variables or the serial", i)
				}
				if keys := 3*len(p.Vars) + len(p.JobStates) + 3*len(p.Runs); keys > maxPartKeys || batchBytes(p) > maxPartBytes {
					t.Fatalf("part %d: %d keys, %d bytes", i, keys, batchBytes(p))
				}
				for name := range p.JobStates {
					if states[name] {
						t.Fatalf("state %s in two parts", name)
					}
					states[name] = true
				}
				// Run records come first: their processes wait for them.
				if len(p.Runs) > 0 && stateSeen {
					t.Fatalf("part %d holds runs after a part with states", i)
				}
				stateSeen = stateSeen || len(p.JobStates) > 0
				runs += len(p.Runs)
			}
			if len(states) != tc.states || runs != tc.runs {
				t.Fatalf("parts hold %d states and %d runs, want %d and %d", len(states), runs, tc.states, tc.runs)
			}
		})
	}
}
