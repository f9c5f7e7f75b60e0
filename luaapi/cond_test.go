package luaapi

import (
	"reflect"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

var (
	i   = whenlua.Int
	s   = whenlua.String
	b   = whenlua.Bool
	flt = whenlua.Float
)

type vmap = map[string]whenlua.Value

func TestStringConditions(t *testing.T) {
	cases := []struct {
		name string
		cond string
		vars vmap
		want bool
		read []string
	}{
		{"a bare name is a variable", "free < 1000", vmap{"free": i(10)}, true, []string{"free"}},
		{"an unset variable is nil", "free == nil", nil, true, []string{"free"}},
		{"load is a variable, not Lua's load", "load >= 6", vmap{"load": flt(6.5)}, true, []string{"load"}},
		{"type is a variable, not Lua's type", "type == 'busy'", vmap{"type": s("busy")}, true, []string{"type"}},
		{"next is a variable, not Lua's next", "next == nil", nil, true, []string{"next"}},
		{"print and os are variables too", "print == 1 and os == 2", vmap{"print": i(1), "os": i(2)}, true, []string{"print", "os"}},
		{"tonumber is Lua's tonumber", "tonumber(x) == 5", vmap{"x": s("5")}, true, []string{"x"}},
		{"tostring is Lua's tostring", "tostring(x) == '5'", vmap{"x": i(5)}, true, []string{"x"}},
		{"string is Lua's string library", "string.upper(x) == 'AB'", vmap{"x": s("ab")}, true, []string{"x"}},
		{"string methods work on values", "x:sub(1, 1) == 'a'", vmap{"x": s("ab")}, true, []string{"x"}},
		{"math is Lua's math library", "math.floor(x) == 2", vmap{"x": flt(2.5)}, true, []string{"x"}},
		{"vars reads a variable", "vars.x == true", vmap{"x": b(true)}, true, []string{"x"}},
		{"vars with a computed key reads that variable", "vars[k] == 1", vmap{"k": s("z"), "z": i(1)}, true, []string{"k", "z"}},
		{"booleans arrive as booleans", "flag", vmap{"flag": b(false)}, false, []string{"flag"}},
		{"and stops at the first false", "a and b", vmap{"a": b(false), "b": b(true)}, false, []string{"a"}},
		{"a non-boolean value is truthy", "x", vmap{"x": i(0)}, true, []string{"x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(tc.vars)
			f := mustLoad(t, `when(`+luaQuote(tc.cond)+`, "true", {name = "j"})`, h)
			ok, read, err := f.Jobs[0].Eval(EvalInput{})
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.want || !reflect.DeepEqual(read, tc.read) {
				t.Fatalf("Eval = %v, read %v; want %v, read %v", ok, read, tc.want, tc.read)
			}
		})
	}
}

func luaQuote(s string) string { return "[==[" + s + "]==]" }

func TestHelpers(t *testing.T) {
	evaluated := func(prev vmap) EvalInput { return EvalInput{Evaluated: true, Prev: prev} }
	cases := []struct {
		name string
		cond string
		vars vmap
		in   EvalInput
		want bool
	}{
		{"changes is true when the value differs", `changes("x")`, vmap{"x": i(2)}, evaluated(vmap{"x": i(1)}), true},
		{"changes is false when the value is the same", `changes("x")`, vmap{"x": i(1)}, evaluated(vmap{"x": i(1)}), false},
		{"changes sees a change of type alone", `changes("x")`, vmap{"x": s("1")}, evaluated(vmap{"x": i(1)}), true},
		{"changes sees a variable being unset", `changes("x")`, nil, evaluated(vmap{"x": i(1)}), true},
		{"changes before the first evaluation compares with nil", `changes("x")`, vmap{"x": i(1)}, EvalInput{Prev: vmap{"x": i(1)}}, true},
		{"changes of a variable unset before and now is false", `changes("x")`, nil, evaluated(nil), false},
		{"increases is true when the number grew", `increases("x")`, vmap{"x": flt(1.5)}, evaluated(vmap{"x": i(1)}), true},
		{"increases is false when it shrank", `increases("x")`, vmap{"x": i(0)}, evaluated(vmap{"x": i(1)}), false},
		{"increases is false when it stayed", `increases("x")`, vmap{"x": i(1)}, evaluated(vmap{"x": i(1)}), false},
		{"increases is false from nil", `increases("x")`, vmap{"x": i(5)}, evaluated(nil), false},
		{"increases is false for strings", `increases("x")`, vmap{"x": s("b")}, evaluated(vmap{"x": s("a")}), false},
		{"decreases is true when the number shrank", `decreases("x")`, vmap{"x": i(0)}, evaluated(vmap{"x": i(1)}), true},
		{"decreases is false when it grew", `decreases("x")`, vmap{"x": i(2)}, evaluated(vmap{"x": i(1)}), false},
		{"decreases is false to nil", `decreases("x")`, nil, evaluated(vmap{"x": i(1)}), false},
		{"prev gives the previous value", `prev("x") == 1 and x == 2`, vmap{"x": i(2)}, evaluated(vmap{"x": i(1)}), true},
		{"prev is nil before the first evaluation", `prev("x") == nil`, vmap{"x": i(2)}, EvalInput{Prev: vmap{"x": i(1)}}, true},
		{"reloaded is true after a load", `reloaded()`, nil, EvalInput{Reloaded: true}, true},
		{"reloaded is false after that", `reloaded()`, nil, evaluated(nil), false},
	}
	for _, tc := range cases {
		for _, form := range []struct{ kind, src string }{
			{"a string condition", luaQuote(tc.cond)},
			{"a function condition", "function() return " + tc.cond + " end"},
		} {
			if form.kind == "a function condition" && tc.cond == `prev("x") == 1 and x == 2` {
				form.src = `function() return prev("x") == 1 and vars.x == 2 end`
			}
			t.Run(tc.name+" in "+form.kind, func(t *testing.T) {
				f := mustLoad(t, "when("+form.src+`, "true", {name = "j"})`, newFakeHost(tc.vars))
				ok, read, err := f.Jobs[0].Eval(tc.in)
				if err != nil {
					t.Fatal(err)
				}
				if ok != tc.want {
					t.Fatalf("Eval = %v, want %v", ok, tc.want)
				}
				if tc.cond != "reloaded()" && !reflect.DeepEqual(read, []string{"x"}) {
					t.Fatalf("read = %v, want [x]", read)
				}
			})
		}
	}
}

func TestHelpersOutsideConditionsRaise(t *testing.T) {
	for _, name := range []string{`changes("x")`, `prev("x")`, `reloaded()`, `increases("x")`} {
		t.Run(name+" at the top level is an error", func(t *testing.T) {
			_, err := loadSrc(t, "local v = "+name, Options{Host: newFakeHost(nil)})
			wantErr(t, err, "test.lua:1:")
			wantErr(t, err, "only meaningful inside a condition")
		})
	}
}

func TestFunctionConditionsReadVarsAndGet(t *testing.T) {
	h := newFakeHost(vmap{"a": i(1), "b": s("x"), "k": s("a")})
	f := mustLoad(t, `
when(function() return vars.a == 1 and get("b") == "x" and vars[vars.k] == 1 end, "true", {name = "j"})`, h)
	ok, read, err := f.Jobs[0].Eval(EvalInput{})
	if err != nil || !ok {
		t.Fatalf("Eval = %v, %v", ok, err)
	}
	if want := []string{"a", "b", "k"}; !reflect.DeepEqual(read, want) {
		t.Fatalf("read = %v, want %v", read, want)
	}
	if j := f.Jobs[0]; !j.DepsAll {
		t.Fatalf("vars[vars.k] should make the job depend on everything, deps %v", j.Deps)
	}
}

func TestConditionErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"comparing nil with a number says file:line", "\n\nwhen('x < 5', 'true', {name = 'j'})", "test.lua:3: attempt to compare"},
		{"an error in a function condition says file:line", "when(function()\n  error('boom')\nend, 'true', {name = 'j'})", "test.lua:2: boom"},
		{"set inside a condition is an error", "when(function() set('x', 1) return true end, 'true', {name = 'j'})", "test.lua:1: set: variables cannot be set inside a condition"},
		{"whisper inside a condition is an error", "when(function() whisper{x = 1} return true end, 'true', {name = 'j'})", "whisper: variables cannot be set inside a condition"},
		{"assigning to vars is an error", "when(function() vars.x = 1 return true end, 'true', {name = 'j'})", "vars is read-only"},
		{"calling a variable in a string condition is an error", "when('x()', 'true', {name = 'j'})", "test.lua:1:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(nil)
			f := mustLoad(t, tc.src, h)
			ok, _, err := f.Jobs[0].Eval(EvalInput{})
			if ok {
				t.Fatal("a failing condition returned true")
			}
			asCallError(t, err)
			wantErr(t, err, tc.want)
			if len(h.sets) != 0 {
				t.Fatalf("a condition stored %v", h.sets)
			}
		})
	}
}

func TestDeps(t *testing.T) {
	cases := []struct {
		name string
		cond string // a Lua expression: a string or a function
		deps []string
		all  bool
	}{
		{"string: free names are dependencies", `"a > 1 and b"`, []string{"a", "b"}, false},
		{"string: helper arguments are dependencies", `"changes('x') and prev('y') == nil"`, []string{"x", "y"}, false},
		{"string: exempt names are not", `"tonumber(s) and string.len(t) and math.abs(u) and reloaded()"`, []string{"s", "t", "u"}, false},
		{"string: names shadowing globals are dependencies", `"load > 1 or type or next"`, []string{"load", "next", "type"}, false},
		{"string: vars with a literal key is a dependency", `"vars.a or vars['b']"`, []string{"a", "b"}, false},
		{"string: vars with a computed key reads anything", `"vars[k]"`, []string{"k"}, true},
		{"string: vars passed around reads anything", `"tostring(vars)"`, nil, true},
		{"string: a helper with a computed name reads anything", `"changes(n)"`, []string{"n"}, true},
		{"string: locals of an inner function are not variables", `"(function(q) return q + z end)(1)"`, []string{"z"}, false},
		{"function: vars fields are dependencies", `function() return vars.a and vars["b"] end`, []string{"a", "b"}, false},
		{"string: concatenations read their operands", `"a .. 'x' .. (b .. vars.c) == '1'"`, []string{"a", "b", "c"}, false},
		{"function: concatenations read their operands", `function() return vars.a .. "x" .. (vars.b .. get("c")) == "1" end`, []string{"a", "b", "c"}, false},
		{"function: get and helpers with literals are dependencies", `function() return get("g") and changes("c") and increases("i") end`, []string{"c", "g", "i"}, false},
		{"function: globals are not dependencies", `function() return threshold and load end`, nil, false},
		{"function: library calls are fine", `function() return tonumber(vars.a) and string.find(vars.s, "x") and math.max(1, 2) and os.time() end`, []string{"a", "s"}, false},
		{"function: string methods are fine", `function() return vars.s:upper() == "X" end`, []string{"s"}, false},
		{"function: a computed vars key reads anything", `function() local k = "a" return vars[k] end`, nil, true},
		{"function: get with a computed name reads anything", `function() local k = "a" return get(k) end`, nil, true},
		{"function: a global function call reads anything", `function() return check(vars.a) end`, []string{"a"}, true},
		{"function: a call through a table reads anything", `function() return mylib.check() end`, nil, true},
		{"function: a local function call reads anything", `function() local f = function() return 1 end return f() end`, nil, true},
		{"function: an unknown method reads anything", `function() return obj:check() end`, nil, true},
		{"function: aliasing vars reads anything", `function() local v = vars return v.a end`, nil, true},
		{"function: pairs over vars reads anything", `function() for k in pairs(vars) do end end`, nil, true},
		{"function: loadstring reads anything", `function() return loadstring("return vars.a")() end`, nil, true},
		{"function: a local named vars is not vars", `function() local vars = {a = 1} return vars.a end`, nil, false},
		{"function: an inline function literal is analysed", `function() return (function() return vars.z end)() end`, []string{"z"}, false},
		{"function: control flow is analysed", `function() for i = 1, 3 do if vars.a then return vars.b end end while vars.c do end repeat local r = vars.d until r end`, []string{"a", "b", "c", "d"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := mustLoad(t, "when("+tc.cond+", 'true', {name = 'j'})", newFakeHost(nil))
			j := f.Jobs[0]
			deps := j.Deps
			if len(deps) == 0 {
				deps = nil
			}
			if !reflect.DeepEqual(deps, tc.deps) || j.DepsAll != tc.all {
				t.Fatalf("Deps = %v, all = %v; want %v, all = %v", deps, j.DepsAll, tc.deps, tc.all)
			}
		})
	}
}

func TestTwoFunctionsOnOneLineShareTheirDeps(t *testing.T) {
	f := mustLoad(t, `when(function() return vars.a end, "t", {name = "x"}) when(function() return vars.b end, "t", {name = "y"})`, newFakeHost(nil))
	for _, j := range f.Jobs {
		if !reflect.DeepEqual(j.Deps, []string{"a", "b"}) || j.DepsAll {
			t.Fatalf("%s: Deps = %v, all = %v (want the union, a superset)", j.Name, j.Deps, j.DepsAll)
		}
	}
}

func TestCondSourceTellsWhetherAConditionChanged(t *testing.T) {
	load := func(src string) *Job { return mustLoad(t, src, newFakeHost(nil)).Jobs[0] }
	a := load("when(function()\n  return vars.x\nend, 'a', {name = 'j'})")
	moved := load("-- a comment above\n\nwhen(function()\n  return vars.x\nend, 'b', {name = 'j'})")
	edited := load("when(function()\n  return vars.y\nend, 'a', {name = 'j'})")
	if a.Cond != moved.Cond {
		t.Errorf("moving a function changed its Cond: %q vs %q", a.Cond, moved.Cond)
	}
	if a.Cond != "function()\n  return vars.x\nend" {
		t.Errorf("Cond = %q, want the function's text alone", a.Cond)
	}
	if a.Cond == edited.Cond {
		t.Errorf("editing a function kept its Cond %q", a.Cond)
	}
}

// A condition's type error says which of the variables it read are unset,
// or hold a string that reads as a number (set without --type).
func TestAConditionsTypeErrorNamesTheVariablesBehindIt(t *testing.T) {
	cases := []struct {
		name, cond string
		vars       vmap
		want       string // in the error
	}{
		{"an unset variable compared", "disk >= 90", nil, "attempt to compare number with nil (unset: disk)"},
		{"an unset variable on the right", "90 <= disk", nil, "attempt to compare number with nil (unset: disk)"},
		{"unset among set ones", "a > 1 and b + c > 2", vmap{"a": i(5), "c": i(1)}, "(unset: b)"},
		{"through vars", `vars.n * 2 > 1`, nil, "(unset: n)"},
		{"a numeric string compared", "count >= 3", vmap{"count": s("5")},
			`attempt to compare number with string (strings: count; set numbers with --type int or --type float)`},
		{"a float string", "load > 6", vmap{"load": s(" 6.5")}, `(strings: load; set numbers with`},
		{"many unset, five named", "a == b and c == d and e == f and g > 1", nil, "(unset: a, b, c, d, e and 2 more)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := mustLoad(t, `when(`+luaQuote(tc.cond)+`, "true", {name = "j"})`, newFakeHost(tc.vars))
			_, _, err := f.Jobs[0].Eval(EvalInput{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q", err, tc.want)
			}
		})
	}
	// No hint where the variables are not the cause, or for other errors.
	for _, tc := range []struct {
		cond string
		vars vmap
		want string
	}{
		{"x > 1", vmap{"x": s("many")}, "attempt to compare number with string"},
		{"x > nil", vmap{"x": i(1)}, "attempt to compare nil with number"},
		{"x.y == 1", nil, "attempt to index a non-table object(nil) with key 'y'"},
		// Arithmetic converts a numeric string: the culprit is the other one.
		{"a + b > 1", vmap{"a": s("x"), "b": s("5")}, "cannot perform add operation between string and number"},
	} {
		f := mustLoad(t, `when(`+luaQuote(tc.cond)+`, "true", {name = "j"})`, newFakeHost(tc.vars))
		_, _, err := f.Jobs[0].Eval(EvalInput{})
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one ending in %q", tc.cond, err, tc.want)
		}
	}
}

func TestDepsByReads(t *testing.T) {
	cases := []struct {
		name            string
		cond            string
		byReads, impure bool
	}{
		{"a computed vars key with an upvalue", `function() return vars[n] == 1 end`, true, false},
		{"get with a computed name", `function() return get(n) == 1 end`, true, false},
		{"a string condition indexing vars with a variable", `"vars[k] == 1"`, true, false},
		{"literal names only: not all", `function() return vars.a == 1 end`, false, false},
		{"a helper next to a computed key", `function() return changes("a") and vars[n] end`, false, false},
		{"reloaded next to a computed key", `function() return reloaded() or vars[n] end`, false, false},
		{"a helper with a computed name", `function() return changes(n) end`, false, true},
		{"a call to a function of the file", `function() return check(vars[n]) end`, false, true},
		{"an assignment to an upvalue", `function() n = n .. "x" return vars[n] end`, false, true},
		{"an assignment to a field of a global", `function() t.k = 1 return vars[n] end`, false, true},
		{"an assignment to a local is fine", `function() local m = n m = m .. "" return vars[m] end`, true, false},
		{"time is an input", `function() return vars[n .. os.time()] end`, false, true},
		{"randomness is an input", `function() return vars[n .. math.random(3)] end`, false, true},
		{"table functions may change state", `function() table.insert(t, 1) return vars[n] end`, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := mustLoad(t, "n, t = 'a', {}\nwhen("+tc.cond+", 'true', {name = 'j'})", newFakeHost(nil))
			j := f.Jobs[0]
			if j.DepsByReads != tc.byReads || j.Impure != tc.impure {
				t.Fatalf("DepsByReads = %v, Impure = %v; want %v, %v", j.DepsByReads, j.Impure, tc.byReads, tc.impure)
			}
		})
	}
}
