package luaapi

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/whenlua/whenlua"
)

func TestSandbox(t *testing.T) {
	lib := t.TempDir()
	if err := os.WriteFile(filepath.Join(lib, "ok.lua"), []byte("return {v = 42}"), 0o600); err != nil {
		t.Fatal(err)
	}
	// a module outside the lib dir that must stay out of reach
	if err := os.WriteFile(filepath.Join(filepath.Dir(lib), "x.lua"), []byte("return {}"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := []struct{ name, src, want string }{
		{"os.exit is absent", "os.exit(1)", "attempt to call a non-function object"},
		{"os.setenv is absent", `os.setenv("A", "b")`, "attempt to call a non-function object"},
		{"os.execute is absent", `os.execute("true")`, "attempt to call a non-function object"},
		{"os.remove is absent", `os.remove("/tmp/x")`, "attempt to call a non-function object"},
		{"io is absent", `io.open("/etc/passwd")`, "attempt to index a non-table object"},
		{"debug is absent", `debug.getinfo(1)`, "attempt to index a non-table object"},
		{"dofile is absent", `dofile("/etc/passwd")`, "attempt to call a non-function object"},
		{"loadfile is absent", `loadfile("/etc/passwd")`, "attempt to call a non-function object"},
		{"collectgarbage is absent", `collectgarbage()`, "attempt to call a non-function object"},
		{"require of a parent path is refused", `require "../x"`, `module ../x not found: require only loads lib/NAME.lua`},
		{"require of a missing module says so on one line", `require "nothere"`, `module nothere not found: no file ` + filepath.Join(lib, "nothere.lua")},
		{"require of an absolute path is refused", `require "/etc/passwd"`, `is refused`},
		{"require of a dotted name is refused", `require "a.b"`, `is refused`},
		{"package.loadlib is absent", `package.loadlib("x", "y")`, "attempt to call a non-function object"},
		{"a huge string.rep is refused", `local s = string.rep("x", 1e9)`, "string.rep: a result of"},
		{"a huge rep as a method is refused", `local s = ("xy"):rep(1e9)`, "string.rep: a result of"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSrc(t, tc.src, Options{LibDir: lib, Host: newFakeHost(nil)})
			wantErr(t, err, "test.lua:1: ")
			wantErr(t, err, tc.want)
			if strings.ContainsAny(err.Error(), "\n\t") || strings.HasSuffix(err.Error(), ", ") {
				t.Errorf("error %q is not one clean line", err)
			}
		})
	}
	allowed := []struct{ name, src string }{
		{"os.time, date, clock and getenv work", `assert(os.time() > 0 and os.date("!%Y", 0) == "1970" and os.clock() >= 0 and os.getenv("PATH"))`},
		{"require loads a lib module once", `local a = require "ok" local b = require "ok" assert(a.v == 42 and a == b)`},
		{"string, table and math work", `assert(string.format("%d", 5) == "5" and table.concat({1, 2}, ",") == "1,2" and math.max(1, 2) == 2)`},
		{"pcall catches ordinary errors", `assert(not pcall(error, "x"))`},
		{"loadstring compiles in the sandbox", `assert(loadstring("return 1 + 1")() == 2)`},
		{"patterns work as usual", `local n = 0 for w in ("a b c"):gmatch("%a") do n = n + 1 end assert(n == 3 and ("x=1"):match("(%w)=(%d)") == "x" and ("aaa"):gsub("a", "b") == "bbb" and ("abc"):find("b", 1, true) == 2)`},
		{"print goes to the log", `print("hello", 1)`},
	}
	for _, tc := range allowed {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(nil)
			if _, err := loadSrc(t, tc.src, Options{LibDir: lib, Host: h}); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(tc.src, "print") && !reflect.DeepEqual(h.logs, []string{"test.lua: hello\t1"}) {
				t.Fatalf("logs = %q", h.logs)
			}
		})
	}
}

func TestPathologicalPatternsAreBounded(t *testing.T) {
	subject := strings.Repeat("a", 5000)
	for _, fn := range []string{"find", "match", "gmatch", "gsub"} {
		t.Run("string."+fn+" refuses a backtracking pattern quickly", func(t *testing.T) {
			src := `local s = string.rep("a", 5000)
local r = string.` + fn + `(s, ".-.-.-.-.-.-b"` + map[bool]string{true: `, "")`, false: `)`}[fn == "gsub"]
			// The step budget, not the time limit, must stop it: the
			// time limit is long, and its error would not match.
			_, err := loadSrc(t, src, Options{Host: newFakeHost(nil), Timeout: time.Minute})
			wantErr(t, err, "test.lua:2: string."+fn+": pattern")
			wantErr(t, err, "too complex for a subject of 5000 bytes")
		})
	}
	t.Run("a linear pattern on a large subject still works", func(t *testing.T) {
		h := newFakeHost(map[string]whenlua.Value{"s": whenlua.String(strings.Repeat("ab ", 20000) + "x=42")})
		f := mustLoad(t, `when("tonumber(s:match('x=(%d+)')) == 42 and (s:gsub('ab', '')):len() == 20004", "true", {name = "j"})`, h)
		ok, _, err := f.Jobs[0].Eval(EvalInput{})
		if err != nil || !ok {
			t.Fatalf("Eval = %v, %v", ok, err)
		}
	})
	_ = subject
}

func TestRunawayLoopsStopAtTheLimit(t *testing.T) {
	const limit = 50 * time.Millisecond
	loop := "while true do end"
	cases := append(runawayCases(loop),
		runawayCase{"in a string condition", "when('(function() " + loop + " end)()', 't', {name = 'j'})", evalFirst, 1},
		runawayCase{"in on_unload", "on_unload(function()\n" + loop + "\nend)", (*File).CallOnUnload, 2})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := loadSrc(t, tc.src, Options{Host: newFakeHost(nil), Timeout: limit})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(f)
			ce := asCallError(t, err)
			if !ce.Timeout || ce.Line != tc.line || ce.Path != "test.lua" {
				t.Fatalf("error %+v, want a timeout at test.lua:%d", ce, tc.line)
			}
			wantErr(t, err, "time limit of 50ms exceeded")
			wantUsable(t, f, "a timeout")
		})
	}
	t.Run("at the top level", func(t *testing.T) {
		_, err := loadSrc(t, "local n = 0\n"+loop, Options{Host: newFakeHost(nil), Timeout: limit})
		wantErr(t, err, "test.lua:2: time limit of 50ms exceeded")
	})
}

func mustCompile(t testing.TB, src string) *lua.FunctionProto {
	t.Helper()
	p, err := Compile("extra.lua", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p.Proto
}

func TestPreInfo(t *testing.T) {
	h := newFakeHost(nil)
	f := mustLoad(t, `
seen = nil
every("hour", "true", {name = "j", pre = function(info)
  local r = info.running
  seen = string.format("%s %d %s %s %d %d:%s/%d/%d/%d", info.job_name, info.serial, tostring(info.variables.a),
    tostring(info.variables.b), #r, #r, r[1].job_name, r[1].serial, r[1].pid, r[1].start_time)
  return info.variables.b
end})
every("hour", "true", {name = "nopre"})`, h)
	start := time.Unix(1700000000, 0)
	ok, _, err := job(t, f, "j").CallPre(PreInfo{Serial: 7, Vars: vmap{"a": i(1), "b": b(true)},
		Running: []whenlua.Run{{Serial: 5, Job: "other", PID: 99, Start: start}}})
	if err != nil || !ok {
		t.Fatalf("CallPre = %v, %v", ok, err)
	}
	if got := f.s.L.GetGlobal("seen").String(); got != "j 7 1 true 1 1:other/5/99/1700000000" {
		t.Fatalf("info seen as %q", got)
	}
	t.Run("a falsy pre refuses", func(t *testing.T) {
		ok, _, err := job(t, f, "j").CallPre(PreInfo{Serial: 8, Vars: vmap{"b": b(false)}, Running: []whenlua.Run{{}}})
		if err != nil || ok {
			t.Fatalf("CallPre = %v, %v", ok, err)
		}
	})
	t.Run("a job without pre may start", func(t *testing.T) {
		ok, _, err := job(t, f, "nopre").CallPre(PreInfo{})
		if err != nil || !ok {
			t.Fatalf("CallPre = %v, %v", ok, err)
		}
	})
}

func TestOneAndMax(t *testing.T) {
	h := newFakeHost(nil)
	f := mustLoad(t, `
every("hour", "true", {name = "one", pre = one()})
every("hour", "true", {name = "two", pre = max(2)})`, h)
	serial := uint64(0)
	run := func(job string) whenlua.Run { serial++; return whenlua.Run{Job: job, Serial: serial} }
	cases := []struct {
		name    string
		job     string
		running []whenlua.Run
		want    bool
		reason  string
	}{
		{"one starts when nothing runs", "one", []whenlua.Run{}, true, ""},
		{"one starts while only other jobs run", "one", []whenlua.Run{run("two"), run("x")}, true, ""},
		{"one refuses while a run of it runs", "one", []whenlua.Run{run("two"), run("one")}, false, "one(): serial 4 still running"},
		{"max(2) starts with one run running", "two", []whenlua.Run{run("two"), run("one")}, true, ""},
		{"max(2) refuses with two runs running", "two", []whenlua.Run{run("two"), run("two")}, false, "max(2): serials 7, 8 still running"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason, err := job(t, f, tc.job).CallPre(PreInfo{Running: tc.running})
			if err != nil || ok != tc.want || reason != tc.reason {
				t.Fatalf("CallPre = %v, %q, %v; want %v, %q", ok, reason, err, tc.want, tc.reason)
			}
		})
	}
	t.Run("a reason is one line, clipped", func(t *testing.T) {
		f := mustLoad(t, `every("hour", "true", {name = "r", pre = function() return false, "no\n\tway " .. string.rep("x", 300) end})
every("hour", "true", {name = "n", pre = function() return nil, 5 end})`, newFakeHost(nil))
		if ok, reason, err := job(t, f, "r").CallPre(PreInfo{}); ok || err != nil || !strings.HasPrefix(reason, "no way xxx") || len(reason) != 203 {
			t.Errorf("CallPre = %v, %q (%d bytes), %v", ok, reason, len(reason), err)
		}
		if ok, reason, err := job(t, f, "n").CallPre(PreInfo{}); ok || err != nil || reason != "" {
			t.Errorf("a refusal with a number after it: %v, %q, %v", ok, reason, err)
		}
	})
	t.Run("running comes from the host when the info has none", func(t *testing.T) {
		h.running = []whenlua.Run{run("one")}
		ok, _, err := job(t, f, "one").CallPre(PreInfo{})
		if err != nil || ok {
			t.Fatalf("CallPre = %v, %v; want a refusal", ok, err)
		}
	})
	t.Run("max(0) is a load error at its line", func(t *testing.T) {
		_, err := loadSrc(t, "\nevery('hour', 't', {pre = max(0)})", Options{Host: newFakeHost(nil)})
		wantErr(t, err, "test.lua:2: max: want a whole number of runs of at least 1, not 0")
	})
	t.Run("max of a string says it is one", func(t *testing.T) {
		_, err := loadSrc(t, `every('hour', 't', {pre = max("2")})`, Options{Host: newFakeHost(nil)})
		wantErr(t, err, `test.lua:1: max: want a whole number of runs of at least 1, not the string "2"`)
	})
}

func TestPostResult(t *testing.T) {
	h := newFakeHost(nil)
	f := mustLoad(t, `
every("hour", "true", {name = "j", post = function(r)
  got = string.format("%s %d %d %s %s %s %q %d %d %d %.1f", r.job_name, r.serial, r.code, tostring(r.signal),
    tostring(r.error), r.tmpdir, r:output(), r.output_size, r.start_time, r.end_time, r.duration)
  ok, err = pcall(function() r.code = 0 end)
end})`, h)
	start := time.Unix(1700000000, 0)
	r := whenlua.Run{Serial: 3, Job: "j", Code: 2, Start: start, End: start.Add(1500 * time.Millisecond),
		Output: []byte("head\n[9 bytes left out]\ntail\n"), OutputSize: 40}
	if err := job(t, f, "j").CallPost(r, "/tmp/run3"); err != nil {
		t.Fatal(err)
	}
	want := `j 3 2 nil nil /tmp/run3 "head\n[9 bytes left out]\ntail\n" 40 1700000000 1700000001 1.5`
	if got := f.s.L.GetGlobal("got").String(); got != want {
		t.Fatalf("result seen as %q, want %q", got, want)
	}
	if ok := f.s.L.GetGlobal("ok"); ok != lua.LFalse {
		t.Fatalf("post could change its result: pcall gave %v", ok)
	}
	r.Signal, r.Code = "killed", -1
	if err := job(t, f, "j").CallPost(r, "/tmp/run3"); err != nil {
		t.Fatal(err)
	}
	if got := f.s.L.GetGlobal("got").String(); !strings.HasPrefix(got, "j 3 -1 killed ") {
		t.Fatalf("result seen as %q", got)
	}
}

func TestSetAndWhisperOrigins(t *testing.T) {
	h := newFakeHost(nil)
	f := mustLoad(t, `
set("top", 1)
on_load(function() set{a = 1.5, b = "x"} end)
on_unload(function() whisper("gone", true) end)
every("hour", "true", {name = "j",
  pre = function() whisper("p", 1) return true end,
  post = function(r) set("done", r.code) set("top") end})`, h)
	if err := f.CallOnLoad(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Jobs[0].CallPre(PreInfo{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Jobs[0].CallPost(whenlua.Run{Code: 0}, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.CallOnUnload(); err != nil {
		t.Fatal(err)
	}
	load := whenlua.OriginLoad("test.lua")
	want := []setCall{
		{load, []whenlua.Assignment{{Name: "top", Value: i(1)}}, true},
		{load, []whenlua.Assignment{{Name: "a", Value: flt(1.5)}, {Name: "b", Value: s("x")}}, true},
		{whenlua.OriginPre("j"), []whenlua.Assignment{{Name: "p", Value: i(1)}}, false},
		{whenlua.OriginPost("j"), []whenlua.Assignment{{Name: "done", Value: i(0)}}, true},
		{whenlua.OriginPost("j"), []whenlua.Assignment{{Name: "top", Value: whenlua.Nil}}, true},
		{load, []whenlua.Assignment{{Name: "gone", Value: b(true)}}, false},
	}
	if !reflect.DeepEqual(h.sets, want) {
		t.Fatalf("sets:\n got %+v\nwant %+v", h.sets, want)
	}
}

func TestAHostCallbackMayCallBackIntoTheFile(t *testing.T) {
	h := newFakeHost(nil)
	f := mustLoad(t, `
when("x == 1", "true", {name = "cond"})
every("hour", "true", {name = "j", post = function() set("x", 1) set("after", get("x")) end})`, h)
	var evals []bool
	h.onSet = func() {
		h.onSet = nil
		ok, _, err := job(t, f, "cond").Eval(EvalInput{})
		if err != nil {
			t.Errorf("nested Eval: %v", err)
		}
		evals = append(evals, ok)
	}
	if err := job(t, f, "j").CallPost(whenlua.Run{}, ""); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(evals, []bool{true}) {
		t.Fatalf("nested evaluations = %v", evals)
	}
	// the post's frame came back: its second set still has the post origin
	if last := h.sets[len(h.sets)-1]; last.Origin != whenlua.OriginPost("j") || last.As[0].Name != "after" {
		t.Fatalf("last set = %+v", last)
	}
}

func TestMailtoSendsThroughTheHost(t *testing.T) {
	h := newFakeHost(nil)
	f := mustLoad(t, `
every("hour", "true", {name = "always", post = mailto("me@example.com")})
every("hour", "true", {name = "failures", post = mailto("ops@example.com", {only_on_failure = true, from = "whenlua@host"})})`, h)
	ok := whenlua.Run{Serial: 1, Code: 0, Start: time.Unix(1700000000, 0), End: time.Unix(1700000002, 0), Output: []byte("it broke\n"), OutputSize: 9}
	bad := ok
	bad.Serial, bad.Code = 2, 3
	for _, c := range []struct {
		job string
		r   whenlua.Run
	}{{"always", ok}, {"failures", ok}, {"failures", bad}} {
		if err := job(t, f, c.job).CallPost(c.r, "/tmp/run"); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.mails) != 2 {
		t.Fatalf("sent %d mails, want 2 (only_on_failure skips a success): %+v", len(h.mails), h.mails)
	}
	if m := h.mails[0]; m.To != "me@example.com" || !strings.Contains(m.Msg, "Subject: whenlua: job always #1 exited with status 0\n") || !strings.Contains(m.Msg, "\n\nit broke\n") {
		t.Fatalf("first mail:\n%s", m.Msg)
	}
	if m := h.mails[1]; m.To != "ops@example.com" || !strings.Contains(m.Msg, "From: whenlua@host\n") || !strings.Contains(m.Msg, "Subject: whenlua: job failures #2 exited with status 3\n") {
		t.Fatalf("second mail:\n%s", m.Msg)
	}
}

func TestGsubFollowsLua51(t *testing.T) {
	cases := []struct{ name, expr, want string }{
		{"a plain replacement", `("hello world"):gsub("o", "0")`, "hell0 w0rld 2"},
		{"captures and the whole match", `("k=v"):gsub("(%w)=(%w)", "%2=%1 [%0] 100%%")`, "v=k [k=v] 100% 1"},
		{"%1 without captures is the whole match", `("abc"):gsub("b", "<%1>")`, "a<b>c 1"},
		{"a limit stops early", `("aaaa"):gsub("a", "b", 2)`, "bbaa 2"},
		{"an anchored pattern matches once", `("aaa"):gsub("^a", "b")`, "baa 1"},
		{"a table maps the first capture", `("$x $y $z"):gsub("%$(%w)", {x = "1", y = 2})`, "1 2 $z 3"},
		{"a function gets the captures", `("a1 b2"):gsub("(%a)(%d)", function(l, d) return d .. l end)`, "1a 2b 2"},
		{"a function returning false keeps the match", `("a b"):gsub("%a", function(l) if l == "a" then return false end return "B" end)`, "a B 2"},
		{"position captures are numbers", `("abc"):gsub("()b", "%1")`, "a2c 1"},
		{"empty matches step through", `("ab"):gsub("x*", "-")`, "-a-b- 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := mustLoad(t, "local s, n = "+tc.expr+"\nresult = s .. ' ' .. n", newFakeHost(nil))
			if got := f.s.L.GetGlobal("result").String(); got != tc.want {
				t.Fatalf("%s = %q, want %q", tc.expr, got, tc.want)
			}
		})
	}
	t.Run("a table replacement value is an error", func(t *testing.T) {
		_, err := loadSrc(t, `local s = ("a"):gsub("a", {a = {}})`, Options{Host: newFakeHost(nil)})
		wantErr(t, err, "test.lua:1: invalid replacement value (a table)")
	})
}

// string.match has no plain argument: a fourth one must not switch the
// pattern budget off, as it does for find.
func TestAFourthArgumentDoesNotUnboundStringMatch(t *testing.T) {
	src := `local s = string.rep("a", 5000)
local r = string.match(s, ".-.-.-.-.-.-b", 1, true)`
	// The step budget, not the (long) time limit, must stop it.
	_, err := loadSrc(t, src, Options{Host: newFakeHost(nil), Timeout: time.Minute})
	wantErr(t, err, "test.lua:2: string.match: pattern")
	wantErr(t, err, "too complex")
}
