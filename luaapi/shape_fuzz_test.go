package luaapi

import (
	"fmt"
	"strings"
	"testing"
)

// Hostile shapes of job files: what a typo, a generator gone wrong or an
// attacker writes to take the daemon down. hostileSource builds one from
// the fuzzer's choice of shape, size and an inner piece of text.

// wraps are constructs that nest: opener, closer, and whether the result
// is a statement (else an expression, assigned to x).
var wraps = []struct {
	open, close string
	stmt        bool
}{
	{"(", ")", false}, {"{", "}", false}, {"not ", "", false}, {"- ", "", false}, {"#", "", false},
	{"f(", ")", false}, {"{x=", "}", false}, {"a[", "]", false}, {"function() return ", " end", false},
	{"(function() return ", " end)()", false}, {"x and (", ")", false}, {"'a'..(", ")", false},
	{"do ", " end", true}, {"if x then ", " end", true}, {"while x do ", " end", true},
	{"for i = 1, 2 do ", " end", true}, {"repeat ", " until x", true}, {"local function g() ", " end", true},
	{"if x then else ", " end", true},
}

// chains are operators that make long chains: x OP x OP x ...
var chains = []string{"+x", "..x", " or x", " and x", "==x", "^x", "()", ".b", "[1]", ":m()", "-x", "*x", "..'ab'", "<x", " .. s"}

// hostileSource returns a job file of the given shape; n sets its size.
func hostileSource(shape uint8, n uint32, inner string) string {
	k := int(n % (1 << 20))
	small := int(n % 4096)
	inner = strings.ReplaceAll(inner, "]]", "")
	lit := fmt.Sprintf("%q", inner)
	var b strings.Builder
	switch shape % 10 {
	case 0: // deep nesting of one construct
		w := wraps[int(n>>20)%len(wraps)]
		core := "true"
		if w.stmt {
			core = "x = 1"
		} else {
			b.WriteString("x = ")
		}
		b.WriteString(strings.Repeat(w.open, k))
		b.WriteString(core)
		b.WriteString(strings.Repeat(w.close, k))
	case 1: // a long chain of one operator
		b.WriteString("x = x")
		b.WriteString(strings.Repeat(chains[int(n>>20)%len(chains)], k))
	case 2: // a huge literal
		switch n % 3 {
		case 0:
			fmt.Fprintf(&b, "x = [[%s]]", strings.Repeat(inner+"\n", k))
		case 1:
			fmt.Fprintf(&b, "x = %q", strings.Repeat(inner, k))
		default:
			fmt.Fprintf(&b, "x = {%s}", strings.Repeat("1,", k))
		}
	case 3: // long concatenations of long strings, at run time
		fmt.Fprintf(&b, "local t = string.rep(%s, %d)\nlocal u = t", lit, small*1024)
		b.WriteString(strings.Repeat("..t", int(n>>12)%180))
		b.WriteString("\nlocal v = u..u..u..u\nx = #v")
	case 4: // nesting and chains built at run time and compiled by loadstring
		fmt.Fprintf(&b, `local ok, f = pcall(loadstring, "return " .. string.rep(%s, %d) .. "true" .. string.rep(")", %d))
if ok and f then pcall(f) end`, lit, k, k)
	case 5: // a pre, post or hook that sets its own trigger
		fmt.Fprintf(&b, `when("changes('p')", "true", {name = "self", pre = function() set("p", (get("p") or 0) + 1) return true end,
  post = function(r) set("p", (get("p") or 0) + 1) whisper("q", %s) end})
on_load(function() for i = 1, %d do set("p", i) end end)
on_unload(function() set("p", 0) end)
when(function() return vars.p ~= nil end, %s)`, lit, small, lit)
	case 6: // patterns from the fuzzer on long subjects
		fmt.Fprintf(&b, `local s = string.rep(%s, %d)
for _, f in ipairs({string.find, string.match, string.gmatch, string.gsub}) do pcall(f, s, %s, "%%1") end`, lit, small, lit)
	case 7: // many functions, many jobs
		for i := range small {
			fmt.Fprintf(&b, "when(function() return vars.v%d == %s end, \"true\")\n", i, lit)
		}
	case 8: // string conditions of the fuzzer's text, long
		fmt.Fprintf(&b, "when(%q, \"true\")\nwhen(%q, \"true\")", inner+strings.Repeat(" or x", small), strings.Repeat("(", small)+inner)
	default: // the inner text repeated as code
		b.WriteString(strings.Repeat(inner+"\n", small))
	}
	return b.String()
}

// FuzzHostileShapes loads job files of hostile shapes (deep nesting, long
// chains, huge literals, long concatenations, loadstring of the same,
// self-triggering hooks, patterns, many functions) with the checks of
// FuzzLoadJobFile: no crash, a clear error, no call past its limit.
func FuzzHostileShapes(f *testing.F) {
	for shape := range uint8(10) {
		for _, n := range []uint32{3, 199, 201, 1000, 250_000, 1<<20 + 300, 5<<20 + 100_000, 18<<20 + 4000} {
			f.Add(shape, n, "not ")
		}
	}
	f.Add(uint8(3), uint32(4096+170<<12), "x")
	f.Add(uint8(6), uint32(4000), ".-.-.-.-b")
	f.Fuzz(func(t *testing.T, shape uint8, n uint32, inner string) {
		if len(inner) > 64 {
			inner = inner[:64]
		}
		exerciseJobFile(t, []byte(hostileSource(shape, n, inner)))
	})
}
