package luaapi

import (
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// hoard keeps every 64 KiB string it builds: the live heap grows without
// bound until the call is stopped.
const hoard = "local t, i = {}, 0 while true do i = i + 1; t[i] = string.rep('x', 65536) .. i end"

func TestRunawayAllocationsStopAtTheMemoryLimit(t *testing.T) {
	const limit = 32 << 20
	cases := []struct {
		name string
		src  string
		call func(f *File) error
		line int
	}{
		{"in a function condition", "when(function()\n" + hoard + "\nend, 't', {name = 'j'})",
			func(f *File) error { _, _, err := f.Jobs[0].Eval(EvalInput{}); return err }, 2},
		{"in pre", "every('hour', 't', {name = 'j', pre = function()\n" + hoard + "\nend})",
			func(f *File) error { _, err := f.Jobs[0].CallPre(PreInfo{}); return err }, 2},
		{"in post", "every('hour', 't', {name = 'j', post = function()\n" + hoard + "\nend})",
			func(f *File) error { return f.Jobs[0].CallPost(whenlua.Run{}, "/tmp", "/tmp/output.txt") }, 2},
		{"in on_load", "on_load(function()\n" + hoard + "\nend)", (*File).CallOnLoad, 2},
		{"behind pcall", "when(function()\nwhile true do pcall(function() " + hoard + " end) end\nend, 't', {name = 'j'})",
			func(f *File) error { _, _, err := f.Jobs[0].Eval(EvalInput{}); return err }, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The time limit is far enough for the memory limit to stop
			// these calls before it, and near enough to stop them, with
			// a failure, if the memory limit does not.
			f, err := loadSrc(t, tc.src, Options{Host: newFakeHost(nil), Timeout: 2 * time.Second, MemoryLimit: limit})
			if err != nil {
				t.Fatal(err)
			}
			ce := asCallError(t, tc.call(f))
			if !ce.Memory || ce.Timeout || ce.Line != tc.line || ce.Path != "test.lua" {
				t.Fatalf("error %+v, want the memory limit at test.lua:%d", ce, tc.line)
			}
			wantErr(t, ce, "memory limit of 32 MiB exceeded (a runaway allocation?)")
			// The state is usable again, and what the call hoarded is
			// garbage.
			if _, err := f.s.call(&frame{phase: phaseLoad}, f.s.L.NewFunctionFromProto(mustCompile(t, "local x = 1")), 0); err != nil {
				t.Fatalf("state unusable after the memory limit: %v", err)
			}
		})
	}
	t.Run("at the top level", func(t *testing.T) {
		_, err := loadSrc(t, "local n = 0\n"+hoard, Options{Host: newFakeHost(nil), Timeout: 2 * time.Second, MemoryLimit: limit})
		wantErr(t, err, "test.lua:2: memory limit of 32 MiB exceeded")
	})
}

func TestGarbageDoesNotCountAgainstTheMemoryLimit(t *testing.T) {
	// 3,000 strings of 64 KiB, about 190 MiB in all, each dropped at
	// once: the live heap stays far below the 32 MiB limit.
	src := "local n = 0\nfor i = 1, 3000 do local s = string.rep('y', 65536) .. i; n = n + #s end\nassert(n > 3000 * 65536)"
	if _, err := loadSrc(t, src, Options{Host: newFakeHost(nil), Timeout: 10 * time.Second, MemoryLimit: 32 << 20}); err != nil {
		t.Fatal(err)
	}
}

func TestANegativeMemoryLimitIsNone(t *testing.T) {
	// Only the time limit stops the hoard.
	_, err := loadSrc(t, "local n = 0\n"+hoard, Options{Host: newFakeHost(nil), Timeout: 300 * time.Millisecond, MemoryLimit: -1})
	wantErr(t, err, "test.lua:2: time limit of 300ms exceeded")
}

func TestACallNestedInAnotherIsChargedItsOwnMemory(t *testing.T) {
	// A post sets a variable; the host evaluates, inside that set, a
	// condition that hoards. The condition is stopped; the post, which
	// kept nothing, goes on and ends well.
	h := newFakeHost(nil)
	f, err := loadSrc(t, `
when(function() if vars.grow then `+hoard+` end return false end, "true", {name = "cond"})
every("hour", "true", {name = "j", post = function() set("grow", true) set("after", 1) end})`,
		Options{Host: h, Timeout: 2 * time.Second, MemoryLimit: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var inner error
	h.onSet = func() {
		h.onSet = nil
		_, _, inner = job(t, f, "cond").Eval(EvalInput{})
	}
	if err := job(t, f, "j").CallPost(whenlua.Run{}, "", ""); err != nil {
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
		{"local t = {}\nfor i = 1, 1000 do t[2 * i - 1], t[2 * i] = 999999, i end\nlocal r = string.format(string.rep('%*d', 1000), unpack(t))",
			"test.lua:3: string.format: a result of about"},
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
`
	if _, err := loadSrc(t, ok, Options{Host: newFakeHost(nil)}); err != nil {
		t.Fatal(err)
	}
}

func TestWhatEarlierCallsKeptIsNotChargedToTheNext(t *testing.T) {
	// Each evaluation keeps 12 MiB, in 16 KiB strings, under a 32 MiB
	// limit: the heap grows by 10 x 12 MiB in all, and no evaluation is
	// stopped.
	f, err := loadSrc(t, `
kept = {}
when(function()
  local n = #kept
  for i = 1, 12 * 64 do kept[n + i] = string.rep('k', 16384) .. i end
  return false
end, "true", {name = "keep"})`, Options{Host: newFakeHost(nil), Timeout: 10 * time.Second, MemoryLimit: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, _, err := job(t, f, "keep").Eval(EvalInput{}); err != nil {
			t.Fatalf("evaluation %d: %v", i+1, err)
		}
	}
}
