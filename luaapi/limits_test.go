package luaapi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// Each of these once ended the process with "fatal error: stack overflow"
// in gopher-lua's compiler, which no recover can catch.
func TestDeepNestingIsALoadError(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"a long chain of not in loadstring at the top level",
			`assert(loadstring("return " .. string.rep("not ", 1000000) .. "true"))`, "test.lua:1: <string>: source of 4000011 bytes is larger than the limit of 256 KiB"},
		{"a long chain of calls in loadstring",
			`assert(loadstring("return f"..string.rep("()",1e6)))`, "test.lua:1: <string>: source of 2000008 bytes is larger than the limit of 256 KiB"},
		{"a shorter chain of not in loadstring",
			`assert(loadstring("return " .. string.rep("not ", 10000) .. "true"))`, "test.lua:1: <string>:1: nesting too deep (limit 200"},
		{"a shorter chain of calls in loadstring",
			`assert(loadstring("return f"..string.rep("()",1e4)))`, "test.lua:1: <string>:1: nesting too deep (limit 200"},
		{"a long chain of not in the file", "x = " + strings.Repeat("not ", 300) + "true", "test.lua:1: nesting too deep (limit 200"},
		{"nested blocks", strings.Repeat("do ", 300) + strings.Repeat("end ", 300), "nesting too deep"},
		{"an elseif chain", "if x then" + strings.Repeat(" elseif x then", 300) + " end", "nesting too deep"},
		{"nested tables", "x = " + strings.Repeat("{", 300) + strings.Repeat("}", 300), "nesting too deep"},
		{"nested functions", strings.Repeat("return function() ", 300) + strings.Repeat("end ", 300), "nesting too deep"},
		{"a left-leaning arithmetic chain", "x = 1" + strings.Repeat("+1", 300), "nesting too deep"},
		{"in a string condition", `when("` + strings.Repeat("- ", 300) + `x", "true")`, "nesting too deep"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSrc(t, tc.src, Options{Host: newFakeHost(nil), Timeout: 20 * time.Second})
			wantErr(t, err, tc.want)
			if strings.ContainsAny(err.Error(), "\n\t") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
	t.Run("nesting within the limit compiles", func(t *testing.T) {
		src := "x = " + strings.Repeat("not ", MaxNesting-5) + "true\n" +
			"y = " + strings.Repeat("(", 150) + "1" + strings.Repeat(")", 150) + "\n" +
			"z = 'a'" + strings.Repeat("..'a'", 150)
		f := mustLoad(t, src, newFakeHost(nil))
		if got := f.s.L.GetGlobal("z").String(); got != strings.Repeat("a", 151) {
			t.Fatalf("z = %q", got)
		}
	})
}

// A 4 MB file of `x = not not ... true` crashed `whenlua check` and the
// daemon: now it is too large, and a 200 KB one too deep.
func TestAHugeNestedFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "nest.lua")
	if err := os.WriteFile(big, []byte("x = "+strings.Repeat("not ", 1<<20)+"true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantErr(t, Check(big), big+": source of 4194313 bytes is larger than the limit of 256 KiB")
	deep := filepath.Join(dir, "deep.lua")
	if err := os.WriteFile(deep, []byte("x = "+strings.Repeat("not ", 50_000)+"true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantErr(t, Check(deep), deep+":1: nesting too deep (limit 200")
}

func TestReadSourceReadsOnlyRegularFilesUpToTheCap(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.lua")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	_, err := ReadSource(zero)
	wantErr(t, err, zero+": not a regular file (a character device)")

	fifo := filepath.Join(dir, "f.lua")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err = ReadSource(fifo) // no writer: a blocking open would wait for one
	wantErr(t, err, fifo+": not a regular file (a named pipe)")

	huge := filepath.Join(dir, "huge.lua")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 30); err != nil { // sparse: nothing is written
		t.Fatal(err)
	}
	f.Close()
	_, err = ReadSource(huge)
	wantErr(t, err, huge+": source of 68719476736 bytes is larger than the limit of 256 KiB")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LoadError", err, err)
	}

	ok := filepath.Join(dir, "ok.lua")
	if err := os.WriteFile(ok, []byte(strings.Repeat("-", MaxSourceLen)), 0o600); err != nil {
		t.Fatal(err)
	}
	if src, err := ReadSource(ok); err != nil || len(src) != MaxSourceLen {
		t.Fatalf("ReadSource of a file of exactly the cap: %d bytes, %v", len(src), err)
	}
	_, err = ReadSource(filepath.Join(dir, "missing.lua"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
}

func TestRequireRefusesWhatIsNotARegularFile(t *testing.T) {
	lib := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(lib, "zero.lua")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(lib, "f.lua"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"zero", "f"} {
		_, err := loadSrc(t, `require "`+name+`"`, Options{LibDir: lib, Host: newFakeHost(nil), Timeout: 10 * time.Second})
		wantErr(t, err, "test.lua:1: error loading module "+name+": ")
		wantErr(t, err, "not a regular file")
	}
}

// One expression of long concatenations asked gopher-lua for ~40 GB at
// once and ended in "fatal error: runtime: out of memory".
func TestConcatenationIsBounded(t *testing.T) {
	chain := func(v string, n int) string { return v + strings.Repeat(".."+v, n-1) }
	cases := []struct{ name, src string }{
		{"one chain of 100 strings of 4 MiB", "local t = string.rep('x', 4 * 1024 * 1024)\nlocal u = " + chain("t", 100)},
		{"chains of chains", "local t = string.rep('x', 4 * 1024 * 1024)\nlocal u = " + chain("("+chain("t", 10)+")", 10)},
		{"a chain in a function", "local t = string.rep('x', 4 * 1024 * 1024)\nlocal function f() return " + chain("t", 20) + " end\nlocal u = f()"},
		{"a chain in a string condition", "when('" + chain("s", 20) + " == \"\"', 'true', {name = 'j'})"},
		{"a chain in loadstring", "local t = string.rep('x', 4 * 1024 * 1024)\nlocal u = loadstring('local t = ... return " + chain("t", 20) + "')(t)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(map[string]whenlua.Value{"s": whenlua.String(strings.Repeat("x", whenlua.MaxValueLen))})
			f, err := loadSrc(t, tc.src, Options{Host: h, Timeout: time.Minute})
			if err == nil && len(f.Jobs) == 1 {
				_, _, err = f.Jobs[0].Eval(EvalInput{})
			}
			if whenlua.MaxValueLen*20 <= MaxBuildLen && strings.Contains(tc.name, "condition") {
				if err != nil {
					t.Fatalf("a chain of %d bytes: %v", whenlua.MaxValueLen*20, err)
				}
				return
			}
			wantErr(t, err, "concatenation: a result of more than 67108864 bytes")
		})
	}
}

func TestConcatenationFollowsLua51(t *testing.T) {
	src := `
local mt = {__concat = function(a, b)
  local x = type(a) == "table" and a.v or a
  local y = type(b) == "table" and b.v or b
  return "<" .. x .. "|" .. y .. ">"
end}
local t = setmetatable({v = "T"}, mt)
r1 = "a" .. 1 .. 2.5 .. "b"
r2 = "a" .. t .. "b" .. "c"
r3 = t .. "x"
r4 = 1 .. 2
local function tail() return "x" .. "y" end
r5 = tail()
ok, err = pcall(function() return "a" .. nil end)
ok2, err2 = pcall(function() return {} .. "a" end)`
	f := mustLoad(t, src, newFakeHost(nil))
	for name, want := range map[string]string{
		"r1": "a12.5b", "r2": "a<T|bc>", "r3": "<T|x>", "r4": "12", "r5": "xy", "ok": "false", "ok2": "false",
		"err":  "test.lua:14: cannot perform concat operation between string and nil",
		"err2": "test.lua:15: cannot perform concat operation between table and string",
	} {
		if got := f.s.L.GetGlobal(name).String(); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// loadstring of a 16 MB source blocked the daemon for 18 s past the 2 s
// limit and kept 1.4 GB.
func TestLoadstringIsBounded(t *testing.T) {
	t.Run("a source over the cap is refused", func(t *testing.T) {
		f := mustLoad(t, `local s = string.rep("x = x + 1\n", 400000)
local src = "x = 1\n" .. s .. s .. s .. s
fn, err = loadstring(src)`, newFakeHost(nil))
		if fn := f.s.L.GetGlobal("fn"); fn.String() != "nil" {
			t.Fatalf("loadstring returned %v", fn)
		}
		if got := f.s.L.GetGlobal("err").String(); !strings.Contains(got, "source of 16000006 bytes is larger than the limit of 256 KiB") {
			t.Fatalf("err = %q", got)
		}
	})
	t.Run("load's pieces are capped too", func(t *testing.T) {
		f := mustLoad(t, `local n = 0
fn, err = load(function() n = n + 1 if n < 100 then return string.rep(" ", 4096) end end, "pieces")`, newFakeHost(nil))
		if got := f.s.L.GetGlobal("err").String(); !strings.Contains(got, "pieces: source of 266240 bytes is larger than the limit of 256 KiB") {
			t.Fatalf("err = %q", got)
		}
	})
	t.Run("the parse stops when the call's context is done", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errTimeLimit)
		_, _, err := compileChunk(ctx, "x", []byte(strings.Repeat("x = x + 1\n", 25000)))
		if err != errTimeLimit {
			t.Fatalf("compileChunk under a done context: %v, want %v", err, errTimeLimit)
		}
		_, err = loadSrc(t, `local src = string.rep("x = x + 1\n", 25000)
while true do loadstring(src) end`, Options{Host: newFakeHost(nil), Timeout: 100 * time.Millisecond})
		wantErr(t, err, "test.lua:2: time limit of 100ms exceeded")
	})
	t.Run("loadstring and load still work", func(t *testing.T) {
		f := mustLoad(t, `a = loadstring("return 1 + 1")()
local parts = {"return ", "'x' .. ", "'y'"}
local i = 0
b = load(function() i = i + 1 return parts[i] end)()
c, d = loadstring("return +", "=mine")`, newFakeHost(nil))
		for name, want := range map[string]string{"a": "2", "b": "xy", "c": "nil", "d": "mine:1: syntax error near '+'"} {
			if got := f.s.L.GetGlobal(name).String(); !strings.HasPrefix(got, want) {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
	})
}

// mailto mailed any file a job file named as a run's output: it now takes
// only the result the daemon hands to post, and mails the output stored in
// it.
func TestMailtoReadsOnlyTheRunsOwnOutput(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "id_rsa")
	if err := os.WriteFile(secret, []byte("PRIVATE KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newFakeHost(nil)
	f := mustLoad(t, `on_load(function() mailto("x@example.com")({job_name="x",code=1,output="`+secret+`"}) end)
every("hour", "true", {name = "j", post = function(r) pcall(function() r.output = "`+secret+`" end) mailto("x@example.com")(r) end})`, h)
	err := f.CallOnLoad()
	wantErr(t, err, "test.lua:1: ")
	wantErr(t, err, "want the result a post function is given")
	if err := job(t, f, "j").CallPost(whenlua.Run{Serial: 1, Code: 1, Output: []byte("the run's output\n")}, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if len(h.mails) != 1 || strings.Contains(h.mails[0].Msg, "PRIVATE") || !strings.Contains(h.mails[0].Msg, "the run's output") {
		t.Fatalf("mails: %+v", h.mails)
	}
}

func TestALogLineIsClipped(t *testing.T) {
	h := newFakeHost(nil)
	mustLoad(t, `log(string.rep("x", 1000000))`, h)
	if len(h.logs) != 1 || len(h.logs[0]) > MaxLogLen+100 || !strings.HasSuffix(h.logs[0], "...") {
		t.Fatalf("logged %d lines, the first of %d bytes", len(h.logs), len(h.logs[0]))
	}
}

// The daemon compiles and loads changed files off the engine's goroutine,
// beside calls into the files already loaded: run under -race, this finds
// state shared between states.
func TestCompileAndLoadRunOnAnyGoroutine(t *testing.T) {
	lib := t.TempDir()
	if err := os.WriteFile(filepath.Join(lib, "m.lua"), []byte(`return {f = function(s) return s .. "!" end}`), 0o600); err != nil {
		t.Fatal(err)
	}
	src := []byte(`local m = require "m"
when("x > 1 and changes('y')", "true", {name = "a"})
when(function() return m.f(vars.s or "") == "!" and string.find("abc", "(b)") end, "true", {name = "b"})
x = loadstring("return 'a' .. 'b'")()`)
	shared, err := Compile("shared.lua", src)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			proto := shared
			if i%2 == 0 {
				var err error
				if proto, err = Compile(fmt.Sprintf("f%d.lua", i), src); err != nil {
					errs <- err
					return
				}
			}
			f, err := Load(proto.Proto.SourceName, src, proto, Options{LibDir: lib, Host: newFakeHost(map[string]whenlua.Value{"x": whenlua.Int(2), "y": whenlua.Int(1)})})
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			for _, j := range f.Jobs {
				if ok, _, err := j.Eval(EvalInput{}); err != nil || !ok {
					errs <- fmt.Errorf("%s: %v %v", j.Name, ok, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestALongDateFormatIsRefused(t *testing.T) {
	_, err := loadSrc(t, `local s = os.date(string.rep("%c", 100000))`, Options{Host: newFakeHost(nil)})
	wantErr(t, err, "test.lua:1: os.date: a format of 200000 bytes is longer than 4096")
	mustLoad(t, `assert(os.date("!%Y-%m-%d %H:%M", 0) == "1970-01-01 00:00")`, newFakeHost(nil))
}
