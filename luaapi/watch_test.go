package luaapi

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// hoard keeps every 64 KiB string it builds: the live heap grows until the
// call is stopped. At 512 MiB, sixteen times the memory limit of these
// tests, it raises an error of its own, so that a memory limit that does
// not stop it fails the test at once, without the long time limit the
// tests give it or the machine's memory running out.
const hoard = "local t, i = {}, 0 while true do i = i + 1; t[i] = string.rep('x', 65536) .. i; if i == 8192 then error('512 MiB hoarded') end end"

// memoryTimeout is the time limit of the calls that hoard: long enough for
// the memory limit to stop them first, however busy the machine is.
const memoryTimeout = time.Minute

func TestRunawayAllocationsStopAtTheMemoryLimit(t *testing.T) {
	const limit = 32 << 20
	for _, tc := range runawayCases(hoard) {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC() // what earlier tests left does not delay the first collection
			f, err := loadSrc(t, tc.src, Options{Host: newFakeHost(nil), Timeout: memoryTimeout, MemoryLimit: limit})
			if err != nil {
				t.Fatal(err)
			}
			ce := asCallError(t, tc.call(f))
			if !ce.Memory || ce.Timeout || ce.Line != tc.line || ce.Path != "test.lua" {
				t.Fatalf("error %+v, want the memory limit at test.lua:%d", ce, tc.line)
			}
			wantErr(t, ce, "memory limit of 32 MiB exceeded (a runaway allocation?)")
			// What the call hoarded is garbage.
			wantUsable(t, f, "the memory limit")
		})
	}
	t.Run("at the top level", func(t *testing.T) {
		runtime.GC()
		_, err := loadSrc(t, "local n = 0\n"+hoard, Options{Host: newFakeHost(nil), Timeout: memoryTimeout, MemoryLimit: limit})
		wantErr(t, err, "test.lua:2: memory limit of 32 MiB exceeded")
	})
}

func TestGarbageDoesNotCountAgainstTheMemoryLimit(t *testing.T) {
	runtime.GC()
	// 3,000 strings of 64 KiB, about 190 MiB in all, each dropped at
	// once: the live heap stays far below the 32 MiB limit.
	src := "local n = 0\nfor i = 1, 3000 do local s = string.rep('y', 65536) .. i; n = n + #s end\nassert(n > 3000 * 65536)"
	if _, err := loadSrc(t, src, Options{Host: newFakeHost(nil), Timeout: memoryTimeout, MemoryLimit: 32 << 20}); err != nil {
		t.Fatal(err)
	}
}

func TestANegativeMemoryLimitIsNone(t *testing.T) {
	// Only the time limit stops a hoard without a bound of its own.
	const hoard = "local t, i = {}, 0 while true do i = i + 1; t[i] = string.rep('x', 65536) .. i end"
	_, err := loadSrc(t, "local n = 0\n"+hoard, Options{Host: newFakeHost(nil), Timeout: 300 * time.Millisecond, MemoryLimit: -1})
	wantErr(t, err, "test.lua:2: time limit of 300ms exceeded")
}

func TestACallNestedInAnotherIsChargedItsOwnMemory(t *testing.T) {
	runtime.GC()
	// A post sets a variable; the host evaluates, inside that set, a
	// condition that hoards. The condition is stopped; the post, which
	// kept nothing, goes on and ends well.
	h := newFakeHost(nil)
	f, err := loadSrc(t, `
when(function() if vars.grow then `+hoard+` end return false end, "true", {name = "cond"})
every("hour", "true", {name = "j", post = function() set("grow", true) set("after", 1) end})`,
		Options{Host: h, Timeout: memoryTimeout, MemoryLimit: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var inner error
	h.onSet = func() {
		h.onSet = nil
		_, _, inner = job(t, f, "cond").Eval(EvalInput{})
	}
	if err := job(t, f, "j").CallPost(whenlua.Run{}, ""); err != nil {
		t.Fatalf("the post was charged the condition's memory: %v", err)
	}
	if ce := asCallError(t, inner); !ce.Memory || ce.Line != 2 {
		t.Fatalf("nested condition: %+v, want the memory limit at line 2", ce)
	}
	if last := h.sets[len(h.sets)-1]; last.As[0].Name != "after" {
		t.Fatalf("the post did not go on: last set %+v", last)
	}
}

// The functions that could build a huge string in one call, where the
// memory limit cannot stop them, refuse to: a long replacement for each of
// many matches, a long separator between many elements.
func TestFunctionsThatBuildHugeStringsInOneCallRefuse(t *testing.T) {
	cases := []struct{ src, want string }{
		{"local s = string.rep('x', 100000)\nlocal r = s:gsub('.', string.rep('y', 4096))",
			"test.lua:2: string.gsub: a result of more than 67108864 bytes"},
		{"local t = {}\nfor i = 1, 1000 do t[i] = i end\nlocal r = string.format(string.rep('%999999d', 1000), unpack(t))",
			"test.lua:3: string.format: a result of about"},
		{"local r = string.format(string.rep('%[1]s', 100), string.rep('x', 1024 * 1024))",
			"test.lua:1: string.format: a result of about"},
		{"local r = string.format(string.rep('%[1]q', 20), string.rep('\\0', 4 * 1024 * 1024))",
			"test.lua:1: string.format: a result of about"},
		{"local r = string.format(string.rep('%[1]f', 838860), 1e308)",
			"test.lua:1: string.format: a result of about"},
		{"local r = string.rep('x', 65536):gsub('^x+', string.rep('%0', 2000))",
			"test.lua:1: string.gsub: a result of more than 67108864 bytes"},
		{"local s = string.rep('x', 4 * 1024 * 1024)\nlocal t = {}\nfor i = 1, 100 do t[i] = s end\nlocal r = string.format(string.rep('%s', 100), unpack(t))",
			"test.lua:4: string.format: a result of about"},
		{"local t = {}\nfor i = 1, 100000 do t[i] = i end\nlocal r = table.concat(t, string.rep('-', 4096))",
			"test.lua:3: table.concat: a result of about"},
		{"local t = {}\nfor i = 1, 100000 do t[i] = 'x' end\nlocal r = table.concat(t, string.rep('-', 4096), 1, 50000)",
			"test.lua:3: table.concat: a result of about"},
	}
	for _, tc := range cases {
		_, err := loadSrc(t, tc.src, Options{Host: newFakeHost(nil), Timeout: time.Minute})
		wantErr(t, err, tc.want)
	}
	// Below the bound they work as before.
	ok := `
local s = string.rep('ab', 1000)
local r, n = s:gsub('a', '%0%0')
assert(#r == 3000 and n == 1000, 'gsub')
local t = {}
for i = 1, 1000 do t[i] = i end
assert(#table.concat(t, ', ') == 2893 + 2 * 999, 'concat')
assert(table.concat(t, '', 2, 3) == '23', 'concat range')
assert(table.concat({}, 'x') == '', 'concat empty')
assert(string.format('%5.2f|%-4s|%03d|%%|%x', 3.14159, 'ab', 7, 255) == ' 3.14|ab  |007|%|ff', 'format')
local big = string.rep('b', 4 * 1024 * 1024)
local parts = {}
for i = 1, 15 do parts[i] = big end
big = table.concat(parts)
assert(string.format('%.3s|%s', big, 'end') == 'bbb|end', 'format precision')
local refs = {}
for i = 1, 200 do refs[i] = parts[1] end
assert(#string.format('%d', refs) < 100, 'format of a table')
assert(string.format('%s %s', true, nil) == 'true nil', 'format of a boolean and nil')
assert(#string.format('%s', big) == 60 * 1024 * 1024, 'format one long argument')
`
	// Building 60 MiB strings takes seconds under the race detector: a long
	// time limit, so that only a refusal can fail this.
	if _, err := loadSrc(t, ok, Options{Host: newFakeHost(nil), Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
}

func TestWhatEarlierCallsKeptIsNotChargedToTheNext(t *testing.T) {
	runtime.GC()
	// Each evaluation keeps 12 MiB, in 16 KiB strings, under a 32 MiB
	// limit: the heap grows by 10 x 12 MiB in all, and no evaluation is
	// stopped.
	f, err := loadSrc(t, `
kept = {}
when(function()
  local n = #kept
  for i = 1, 12 * 64 do kept[n + i] = string.rep('k', 16384) .. i end
  return false
end, "true", {name = "keep"})`, Options{Host: newFakeHost(nil), Timeout: memoryTimeout, MemoryLimit: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, _, err := job(t, f, "keep").Eval(EvalInput{}); err != nil {
			t.Fatalf("evaluation %d: %v", i+1, err)
		}
	}
}

// scripted returns a watch with the given limit whose heap readings are
// *live and *cycles, and no timer running.
func scripted(limit uint64, live, cycles *uint64) *watch {
	w := &watch{limit: limit, read: func() (uint64, uint64) { return *live, *cycles }, loadGen: loads.gen.Load()}
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
	w.t = time.NewTimer(time.Hour)
	return w
}

// baselined is a scripted watch with a limit of 32 that has had its first
// look and taken its baseline of 100.
func baselined(live, cycles *uint64) *watch {
	*live, *cycles = 100, 1
	w := scripted(32, live, cycles)
	w.memoryExceeded() // the first look
	*cycles = 2
	w.memoryExceeded() // the baseline
	return w
}

func TestTheWatchCountsGrowthFromACollectionWithinTheCall(t *testing.T) {
	var live, cycles uint64 = 100, 5
	w := scripted(32, &live, &cycles)
	steps := []struct {
		live, cycles uint64
		stop         bool
		why          string
	}{
		{100, 5, false, "the first look"},
		{500, 5, false, "no collection since the first look: what earlier calls kept is not counted"},
		{500, 6, false, "the first collection after it: the baseline"},
		{530, 7, false, "30 over the baseline, under the limit"},
		{540, 8, false, "40 over: one collection has found it"},
		{540, 8, false, "the same collection again"},
		{520, 9, false, "back under: the count starts again"},
		{540, 10, false, "over again, once"},
		{545, 11, true, "over in two collections in a row"},
	}
	for _, s := range steps {
		live, cycles = s.live, s.cycles
		if got := w.memoryExceeded(); got != s.stop {
			t.Fatalf("%s: memoryExceeded = %v", s.why, got)
		}
	}

	w = baselined(&live, &cycles)
	live, cycles = 165, 3
	if !w.memoryExceeded() {
		t.Fatal("past twice the limit in one collection: not stopped at once")
	}
}

func TestAResumedWatchTakesANewBaseline(t *testing.T) {
	var live, cycles uint64
	w := baselined(&live, &cycles)
	w.pause()
	// The nested call keeps 200; its own watch is charged for it.
	w.resume()
	live, cycles = 300, 3
	w.memoryExceeded() // a first look again
	live, cycles = 300, 4
	w.memoryExceeded() // baseline 300
	live, cycles = 310, 5
	if w.memoryExceeded() {
		t.Fatal("what the nested call kept was charged to its caller")
	}
}

func TestAStoppedWatchLooksNoMore(t *testing.T) {
	var live, cycles uint64 = 100, 1
	reads := 0
	w := scripted(32, &live, &cycles)
	w.deadline = time.Now().Add(time.Hour)
	w.read = func() (uint64, uint64) { reads++; return live, cycles }
	if err := w.stop(); err != nil {
		t.Fatalf("stop = %v", err)
	}
	w.look()
	if reads != 0 || w.t.Stop() {
		t.Fatalf("a look after stop read the heap %d times or re-armed the timer", reads)
	}
}

func TestACallSkipsItsChecksWhileALoadRunsAndStartsAgainAfter(t *testing.T) {
	var live, cycles uint64
	w := baselined(&live, &cycles)
	load := startWatch(time.Hour, -1, true)
	for _, c := range []uint64{3, 4, 5} {
		live, cycles = 300, c
		if w.memoryExceeded() {
			t.Fatal("growth while a load runs was charged to a call beside it")
		}
	}
	if err := load.stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []uint64{6, 7, 8} { // a first look, the baseline 300, a look
		live, cycles = 300, c
		if w.memoryExceeded() {
			t.Fatal("what a load kept was charged to a call beside it")
		}
	}
	live, cycles = 400, 9
	w.memoryExceeded()
	live, cycles = 400, 10
	if !w.memoryExceeded() {
		t.Fatal("the call's own growth after the load was not charged")
	}
}
