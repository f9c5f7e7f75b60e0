package luaapi

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// patternCalls runs each call on a state with the given string library and
// returns one line per call: its results, or its error.
func patternCalls(L *lua.LState, calls []string) []string {
	var out []string
	for _, c := range calls {
		err := L.DoString(`local ok, a, b, c, d = pcall(function() return ` + c + ` end)
			if not ok then result = "error" return end
			local t = {}
			for _, v in ipairs({a, b, c, d}) do t[#t + 1] = type(v) .. ":" .. tostring(v) end
			result = table.concat(t, " ")`)
		if err != nil {
			out = append(out, "harness: "+err.Error())
			continue
		}
		out = append(out, L.GetGlobal("result").String())
	}
	return out
}

func sandboxState(t testing.TB) *lua.LState {
	t.Helper()
	s, err := newState("p.lua", nil, nil, Options{Host: newFakeHost(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s.L
}

// patternCases are calls of the pattern functions over ordinary and odd
// subjects and patterns.
func patternCases() []string {
	subjects := []string{"", "a", "hello world", "  key = value  ", "x=1, y=22, z=333", "(foo(bar))baz", "aaa", "a.b-c", "THE (quick) fox", "12ab34", "\x00z\x00", "a^b$c", "[x]"}
	patterns := []string{"", "a", ".", "%a+", "%d+", "(%w+)=(%w+)", "^%s*(.-)%s*$", "%s*", "a*", "a-", "a?b", "[%a_][%w_]*", "[^%s]+", "%b()", "%f[%w]%w+",
		"()a()", "(a)(a)%1", "[a-c]+", "[]]", "[^]]", "%.", "^a", "a$", "^", "$", "%p+", "%u", "%x+", "%z", "[%d%.]+", "(h)(e)(l)", "o w", "%S+$", ".-b", "(a*(.)%w(%s*))",
		"[", "%", "(", ")", "%1", "%g", "[a-]", "[-a]", "x*$", "^b", "b^", "$c", "[%]]", "[%a-z]", "%bx", "%f", "%f[", "(()", "((a)", "%2", "[^%d]+$", "(%a)%1*", "%w-%s", "[x]+?"}
	var calls []string
	for _, s := range subjects {
		for _, p := range patterns {
			qs, qp := fmt.Sprintf("%q", s), fmt.Sprintf("%q", p)
			calls = append(calls,
				"string.find("+qs+", "+qp+")", "string.find("+qs+", "+qp+", 3)", "string.find("+qs+", "+qp+", -2)", "string.find("+qs+", "+qp+", 1, true)", "string.find("+qs+", "+qp+", 40)",
				"string.match("+qs+", "+qp+")", "string.match("+qs+", "+qp+", 2)",
				"string.gsub("+qs+", "+qp+", \"<%0>\")", "string.gsub("+qs+", "+qp+", \"#\", 1)", "string.gsub("+qs+", "+qp+", function(a) return a .. a end)",
				"string.gsub("+qs+", "+qp+", \"%1\")", "string.gsub("+qs+", "+qp+", {a = 1, hello = false})",
				"(function() local t = {} for a, b in string.gmatch("+qs+", "+qp+") do t[#t+1] = tostring(a) .. '/' .. tostring(b) if #t > 20 then break end end return table.concat(t, ',') end)()")
		}
	}
	return calls
}

// The sandbox's matcher follows Lua 5.1: where the reference interpreter
// is installed (lua5.1), every case gives what it gives.
func TestPatternsMatchLua51(t *testing.T) {
	lua51, err := exec.LookPath("lua5.1")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("lua5.1 is not installed: .ci/run installs it, and CI never skips this test")
		}
		t.Skip("lua5.1 is not installed")
	}
	calls := patternCases()
	var script strings.Builder
	script.WriteString("local calls = {\n")
	for _, c := range calls {
		fmt.Fprintf(&script, "%q,\n", c)
	}
	script.WriteString(`}
for _, c in ipairs(calls) do
  local ok, a, b, c, d = pcall(loadstring("return " .. c))
  if not ok then print("error") else
    local t = {}
    for _, v in ipairs({a, b, c, d}) do t[#t + 1] = type(v) .. ":" .. tostring(v) end
    print((string.gsub(table.concat(t, " "), "\n", "\\n")))
  end
end`)
	f := filepath.Join(t.TempDir(), "cases.lua")
	if err := os.WriteFile(f, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lua51, f).Output()
	if err != nil {
		t.Fatalf("lua5.1: %v", err)
	}
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	got := patternCalls(sandboxState(t), calls)
	if len(want) != len(got) {
		t.Fatalf("lua5.1 gave %d lines for %d calls", len(want), len(calls))
	}
	n := 0
	for i := range calls {
		if g := strings.ReplaceAll(got[i], "\n", "\\n"); g != want[i] {
			n++
			if n <= 30 {
				t.Errorf("%s:\n  sandbox %s\n  lua5.1  %s", calls[i], g, want[i])
			}
		}
	}
	if n > 0 {
		t.Errorf("%d of %d calls differ", n, len(calls))
	}
}

// BenchmarkPatternBudget is the worst a pattern call costs: a backtracking
// pattern that runs out of its budget.
func BenchmarkPatternBudget(b *testing.B) {
	for _, tc := range []struct{ name, pat string }{
		{"lazy", ".-.-.-.-.-.-b"},
		{"greedy", "a*a*a*a*a*a*b"},
		{"backrefs", "(a*)%1%1%1b"},
		{"balance", "%b()%b()x"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			L := sandboxState(b)
			subject := strings.Repeat("a", 5000)
			if tc.name == "balance" {
				subject = strings.Repeat("(", 5000) + strings.Repeat(")", 5000)
			}
			L.SetGlobal("s", lua.LString(subject))
			L.SetGlobal("p", lua.LString(tc.pat))
			fn, err := L.LoadString("return pcall(string.find, s, p)")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				L.Push(fn)
				L.Call(0, 2)
				if L.Get(-2) != lua.LFalse {
					b.Fatalf("the pattern did not run out of its budget: %v", L.Get(-1))
				}
				L.Pop(2)
			}
		})
	}
}

// A pattern call stops at the call's time limit, well before its budget.
func TestAPatternCallStopsAtTheTimeLimit(t *testing.T) {
	_, err := loadSrc(t, `local s = string.rep("a", 5000)
local r = string.find(s, ".-.-.-.-.-.-b")`, Options{Host: newFakeHost(nil), Timeout: time.Millisecond})
	wantErr(t, err, "test.lua:2: time limit of 1ms exceeded")
}
