package persist

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

func TestValueLogGCKeepsEveryCurrentValue(t *testing.T) {
	s := openTest(t, Options{HistoryKeep: 1})
	big := strings.Repeat("x", 60<<10)
	commit := func(round int) {
		for i := range 300 {
			b := &Batch{Vars: []VarChange{{Name: fmt.Sprintf("v%d", i), Value: whenlua.String(fmt.Sprintf("%d-%s", round, big)), Origin: "test", Time: time.Now()}}}
			if err := s.Commit(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit(1)
	commit(2) // the first round's values are garbage now
	if err := s.Trim(); err != nil {
		t.Fatal(err)
	}
	vlogs := func() int {
		m, _ := filepath.Glob(filepath.Join(s.opts.Dir, "*.vlog"))
		return len(m)
	}
	// Compaction is what tells the value log which of its entries are
	// garbage; force it, as time would.
	if err := s.db.Flatten(2); err != nil {
		t.Fatal(err)
	}
	before := vlogs()
	if err := s.gc(context.Background()); err != nil {
		t.Fatalf("gc: %v", err)
	}
	t.Logf("value-log files: %d before GC, %d after", before, vlogs())
	s = reopen(t, s)
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) != 300 {
		t.Fatalf("%d variables after GC and reopen, want 300", len(vars))
	}
	for name, v := range vars {
		if !strings.HasPrefix(v.S, "2-") || len(v.S) != len(big)+2 {
			t.Fatalf("%s = %.10q... (%d bytes), want round 2's value", name, v.S, len(v.S))
		}
	}
}
