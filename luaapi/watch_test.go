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
