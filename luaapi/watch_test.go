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
			// The time limit is far away: only the memory limit can stop
			// these calls before it.
			f, err := loadSrc(t, tc.src, Options{Host: newFakeHost(nil), Timeout: time.Minute, MemoryLimit: limit})
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
		_, err := loadSrc(t, "local n = 0\n"+hoard, Options{Host: newFakeHost(nil), Timeout: time.Minute, MemoryLimit: limit})
		wantErr(t, err, "test.lua:2: memory limit of 32 MiB exceeded")
	})
}

func TestGarbageDoesNotCountAgainstTheMemoryLimit(t *testing.T) {
	// 3,000 strings of 64 KiB, about 190 MiB in all, each dropped at
	// once: the live heap stays far below the 32 MiB limit.
	src := "local n = 0\nfor i = 1, 3000 do local s = string.rep('y', 65536) .. i; n = n + #s end\nassert(n > 3000 * 65536)"
	if _, err := loadSrc(t, src, Options{Host: newFakeHost(nil), Timeout: time.Minute, MemoryLimit: 32 << 20}); err != nil {
		t.Fatal(err)
	}
}

func TestANegativeMemoryLimitIsNone(t *testing.T) {
	w := startWatch(time.Minute, -1)
	if w.limit != 0 {
		t.Fatalf("limit %d, want none", w.limit)
	}
	if err := w.stop(); err != nil {
		t.Fatalf("stop = %v", err)
	}
}

// The functions that could build a huge string in one call, where the
// memory limit cannot stop them, refuse to: a long replacement for each of
// many matches, a long separator between many elements.
func TestFunctionsThatBuildHugeStringsInOneCallRefuse(t *testing.T) {
	cases := []struct{ src, want string }{
		{"local s = string.rep('x', 100000)\nlocal r = s:gsub('.', string.rep('y', 4096))",
			"test.lua:2: string.gsub: a result of more than 67108864 bytes"},
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
`
	if _, err := loadSrc(t, ok, Options{Host: newFakeHost(nil)}); err != nil {
		t.Fatal(err)
	}
}
