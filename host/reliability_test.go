package host

// The in-process part of the reliability suite (the end-to-end part is in
// cmd/whenlua/reliability_test.go). Short by default; -reliability.long or
// WHENLUA_RELIABILITY_LONG=1 runs the long variant.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/whenlua/whenlua"
)

var reliabilityLong = flag.Bool("reliability.long", false, "run the long variant of the reliability suite")

func longReliability() bool {
	return *reliabilityLong || os.Getenv("WHENLUA_RELIABILITY_LONG") != ""
}

// R5: 64 clients at once, each with its own connection, doing every kind of
// request in a loop against a real engine and store behind the real server
// (run it under -race). Every request succeeds, each client reads its own
// writes, a test-mode set changes nothing, and at the end each client's
// last acknowledged value is its variable's value.
func TestSixtyFourConcurrentClientsAllSucceedAndEachKeepsItsLastValue(t *testing.T) {
	t.Parallel()
	const clients = 64
	rounds := 12
	if longReliability() {
		rounds = 300
	}
	te := newTestEngine(t, map[string]string{"load.lua": `
when("c0 % 5 == 0", "true", {name="fifth"})
when(function() return changes("c1") end, "true", {name="c1changes"})
every("1 hour", "true", {name="hourly"})
`})
	ts := serveFake(t, te.Engine, ServerOptions{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := whenlua.Dial(ts.socket)
			defer c.Close()
			name := fmt.Sprintf("c%d", k)
			fail := func(format string, args ...any) {
				errs <- fmt.Errorf("client %d: "+format, append([]any{k}, args...)...)
			}
			for i := int64(1); i <= int64(rounds); i++ {
				if _, err := c.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: name, Value: whenlua.Int(i)}}}); err != nil {
					fail("set %d: %v", i, err)
					return
				}
				if v, err := c.Get(ctx, name); err != nil || !v.Equal(whenlua.Int(i)) {
					fail("get after set %d: %v, %v", i, v, err)
					return
				}
				if vars, err := c.Vars(ctx); err != nil || !vars[name].Equal(whenlua.Int(i)) {
					fail("vars after set %d: %v, %v", i, vars[name], err)
					return
				}
				if hist, err := c.History(ctx, name, 2); err != nil || len(hist) == 0 || !hist[0].Value.Equal(whenlua.Int(i)) {
					fail("history after set %d: %v, %v", i, hist, err)
					return
				}
				if _, err := c.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeTest, Assignments: []whenlua.Assignment{{Name: name, Value: whenlua.Int(-i)}}}); err != nil {
					fail("test %d: %v", i, err)
					return
				}
				if names, err := c.Names(ctx); err != nil || len(names) != 3 {
					fail("names: %v, %v", names, err)
					return
				}
				if _, err := c.Status(ctx); err != nil {
					fail("status: %v", err)
					return
				}
				if i%4 == 0 {
					if _, err := c.Jobs(ctx); err != nil {
						fail("jobs: %v", err)
						return
					}
					if _, err := c.Log(ctx, "", 5); err != nil {
						fail("log: %v", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	vars, err := ts.client.Vars(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range clients {
		name := fmt.Sprintf("c%d", k)
		if !vars[name].Equal(whenlua.Int(int64(rounds))) {
			t.Errorf("%s = %v, want its client's last value %d", name, vars[name], rounds)
		}
	}
	te.waitIdle()
	if runs := te.runs("fifth"); len(runs) != rounds/5 {
		t.Errorf("fifth ran %d times, want %d (once per 5 sets of c0)", len(runs), rounds/5)
	}
	if runs := te.runs("c1changes"); len(runs) != rounds {
		t.Errorf("c1changes ran %d times, want %d", len(runs), rounds)
	}
}
