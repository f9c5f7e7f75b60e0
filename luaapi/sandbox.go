package luaapi

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Sandbox limits. A job file runs inside the daemon, so nothing it calls may
// stop, stall or reconfigure the process (SPEC §3).
const (
	// PatternBudget bounds the work of one string.find, match, gsub call or
	// one call of a gmatch iterator. The pattern functions are the
	// sandbox's own matcher (pattern.go), which counts its steps; past the
	// budget the call raises "pattern too complex" (a backtracking pattern
	// is one VM instruction, which the time limit cannot interrupt). The
	// budget keeps one call well inside the time limit (docs/benchmarks.md,
	// BenchmarkPatternBudget); ordinary patterns on values up to
	// whenlua.MaxValueLen stay far below it. A simple pattern
	// takes 1 to 3 steps per byte of its subject, so a gsub over the whole
	// of a string stops at a few MiB.
	PatternBudget = 10_000_000
	// MaxRepLen bounds the result of string.rep.
	MaxRepLen = 4 << 20
	// MaxBuildLen bounds the result of string.gsub, string.format and
	// table.concat: the functions that, in one call the memory limit cannot
	// interrupt, could otherwise build a string many times larger than
	// their arguments (a long replacement for each of many matches, a wide
	// field for each of many arguments, a long separator between many
	// elements).
	MaxBuildLen = 64 << 20
	// MaxDateFormatLen bounds the format of os.date.
	MaxDateFormatLen = 4096
)

// baseRemoved are base functions that read files, run a process-wide GC or
// are obsolete.
var baseRemoved = []string{"dofile", "loadfile", "collectgarbage", "_printregs", "module"}

// osKept are the os functions left in place.
var osKept = map[string]bool{"time": true, "date": true, "clock": true, "getenv": true, "difftime": true}

// modNameRE is what `require` accepts: one name of lib/NAME.lua.
var modNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`)

// newLState opens a state with only what job files need: base (without
// dofile, loadfile, collectgarbage, module; print goes to the daemon log),
// package (require loads LibDir/NAME.lua and nothing else), table, string
// (pattern functions budgeted, rep bounded), math, and os limited to time,
// date, clock, getenv and difftime. No io, no debug, no coroutines.
func (s *state) newLState() *lua.LState {
	// A daemon holds one state per loaded file: start the registry and the
	// call stack small and let them grow on demand up to the usual limits.
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		RegistrySize:        256,
		RegistryMaxSize:     lua.RegistrySize * 64,
		RegistryGrowStep:    256,
		CallStackSize:       lua.CallStackSize,
		MinimizeStackMemory: true,
	})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage}, // package first: base's require uses it
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.OsLibName, lua.OpenOs},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	for _, name := range baseRemoved {
		L.SetGlobal(name, lua.LNil)
	}
	L.SetGlobal("print", L.NewFunction(s.print))
	L.SetGlobal(concatName, L.NewFunction(concat))
	L.SetGlobal("loadstring", L.NewFunction(s.loadstring))
	L.SetGlobal("load", L.NewFunction(s.load))

	pkg := L.GetGlobal("package").(*lua.LTable)
	// package.loaders is also the registry's _LOADERS, which require reads:
	// edit it in place.
	loaders := pkg.RawGetString("loaders").(*lua.LTable)
	for i := loaders.Len(); i >= 1; i-- {
		loaders.Remove(i)
	}
	loaders.Append(L.NewFunction(s.loadModule))
	pkg.RawSetString("path", lua.LString(""))
	pkg.RawSetString("cpath", lua.LString(""))
	pkg.RawSetString("loadlib", lua.LNil)

	osT := L.GetGlobal("os").(*lua.LTable)
	var drop []string
	osT.ForEach(func(k, _ lua.LValue) {
		if !osKept[k.String()] {
			drop = append(drop, k.String())
		}
	})
	for _, k := range drop {
		osT.RawSetString(k, lua.LNil)
	}

	// os.date expands each directive of its format (up to some 30 bytes
	// for two): a long format would build a long string in one call.
	date := osT.RawGetString("date")
	osT.RawSetString("date", L.NewFunction(func(L *lua.LState) int {
		if f, ok := L.Get(1).(lua.LString); ok && len(f) > MaxDateFormatLen {
			L.RaiseError("os.date: a format of %d bytes is longer than %d", len(f), MaxDateFormatLen)
		}
		return callOriginal(L, date)
	}))

	strT := L.GetGlobal("string").(*lua.LTable)
	strT.RawSetString("find", L.NewFunction(strFind(true)))
	strT.RawSetString("match", L.NewFunction(strFind(false)))
	strT.RawSetString("gmatch", L.NewFunction(strGmatch))
	strT.RawSetString("gfind", L.NewFunction(strGmatch))
	strT.RawSetString("gsub", L.NewFunction(strGsub))
	rep := strT.RawGetString("rep")
	strT.RawSetString("rep", L.NewFunction(func(L *lua.LState) int {
		str := L.CheckString(1)
		n := L.CheckInt(2)
		if n > 0 && len(str) > 0 && n > MaxRepLen/len(str) {
			L.RaiseError("string.rep: a result of %d x %d bytes is larger than %d bytes", n, len(str), MaxRepLen)
		}
		return callOriginal(L, rep)
	}))
	format := strT.RawGetString("format")
	strT.RawSetString("format", L.NewFunction(func(L *lua.LState) int {
		// gopher-lua hands its arguments to Go's fmt, which prints a table
		// under %d by reflection, contents and all: what is neither a
		// string nor a number is formatted as its name ("table: 0x...").
		for i := 2; i <= L.GetTop(); i++ {
			switch v := L.Get(i).(type) {
			case lua.LString, lua.LNumber:
			default:
				L.Replace(i, lua.LString(v.String()))
			}
		}
		refuseLarge(L, "string.format", formatLen(L))
		return callOriginal(L, format)
	}))
	tblT := L.GetGlobal("table").(*lua.LTable)
	concat := tblT.RawGetString("concat")
	tblT.RawSetString("concat", L.NewFunction(func(L *lua.LState) int {
		refuseLarge(L, "table.concat", concatLen(L))
		return callOriginal(L, concat)
	}))
	return L
}

// refuseLarge raises an error in fn when the result it would build, of
// about n bytes, is larger than MaxBuildLen.
func refuseLarge(L *lua.LState, fn string, n int) {
	if n > MaxBuildLen {
		L.RaiseError("%s: a result of about %d bytes is larger than %d bytes", fn, n, MaxBuildLen)
	}
}

// concatLen is an upper bound of the length of table.concat's result for
// the current arguments (numbers count as 32 bytes; a value the original
// refuses counts as nothing, since nothing is built then).
func concatLen(L *lua.LState) int {
	tbl, ok := L.Get(1).(*lua.LTable)
	if !ok {
		return 0
	}
	sep, ok := L.Get(2).(lua.LString)
	if !ok {
		sep = ""
	}
	i, j := 1, tbl.Len()
	if v, ok := L.Get(3).(lua.LNumber); ok {
		i = max(int(v), 1)
	}
	if v, ok := L.Get(4).(lua.LNumber); ok {
		j = min(int(v), tbl.Len())
	}
	n := 0
	for k := i; k <= j; k++ {
		switch v := tbl.RawGetInt(k).(type) {
		case lua.LString:
			n += len(v)
		case lua.LNumber:
			n += 32
		}
		if k < j {
			n += len(sep)
		}
		if n > MaxBuildLen {
			break
		}
	}
	return n
}

// formatLen is an upper bound of the length of string.format's result for
// the current arguments, directive by directive: its width and precision
// (a '*' counts as 10^6, the most Go's fmt takes), its argument (numbers
// count as 330 bytes, the longest %f of a float64; %q, %x and %X four
// times the argument's length; %s with a precision at most that), and,
// for a directive with an explicit argument index ("%[2]s", which Go's fmt
// takes), the longest argument.
func formatLen(L *lua.LState) int {
	f, ok := L.Get(1).(lua.LString)
	if !ok {
		return 0
	}
	argLen := func(i int) int {
		if v, ok := L.Get(i).(lua.LString); ok {
			return len(v)
		}
		return 330
	}
	longest := -1        // the longest argument, once an indexed directive needs it
	n, next := len(f), 2 // next: the argument of the next directive
	for i := 0; i < len(f) && n <= MaxBuildLen; i++ {
		if f[i] != '%' {
			continue
		}
		i++
		indexed := false
		prec := -1
		for ; i < len(f); i++ {
			c := f[i]
			switch {
			case strings.IndexByte("-+ #0", c) >= 0:
				continue
			case c == '[':
				indexed = true
				continue
			case c == ']':
				continue
			case c == '*':
				n += 1_000_000
				next++
				continue
			case c == '.':
				prec = 0
				continue
			case c >= '0' && c <= '9':
				w := 0
				for ; i < len(f) && f[i] >= '0' && f[i] <= '9'; i++ {
					w = min(w*10+int(f[i]-'0'), MaxBuildLen+1)
				}
				i--
				if prec >= 0 {
					prec = w
				}
				n += w
				continue
			}
			break
		}
		if i >= len(f) || f[i] == '%' {
			continue
		}
		var a int
		if indexed {
			if longest < 0 {
				longest = 0
				for k := 2; k <= L.GetTop(); k++ {
					longest = max(longest, argLen(k))
				}
			}
			a = longest
		} else {
			a = argLen(next)
			next++
		}
		switch f[i] {
		case 'q', 'x', 'X':
			a *= 4
		case 's':
			if prec >= 0 {
				a = min(a, prec)
			}
		}
		n += a
	}
	return n
}

// callOriginal calls fn with the current arguments and returns its results.
func callOriginal(L *lua.LState, fn lua.LValue) int {
	top := L.GetTop()
	L.Push(fn)
	for i := 1; i <= top; i++ {
		L.Push(L.Get(i))
	}
	L.Call(top, lua.MultRet)
	return L.GetTop() - top
}

// clip cuts s to about n bytes, with no broken character at the cut, and
// marks the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// requireMessage puts require's "module NAME not found:\n\tREASON, " (the
// reasons of package.loaders, each on its own line) on one line:
// "module NAME not found: REASON". Other messages are returned as they are.
func requireMessage(msg string) string {
	head, reasons, ok := strings.Cut(msg, " not found:\n\t")
	if !ok || !strings.HasPrefix(head, "module ") {
		return msg
	}
	var rs []string
	for _, r := range strings.Split(reasons, "\n\t") {
		if r = strings.Trim(r, " \t\n,"); r != "" {
			rs = append(rs, r)
		}
	}
	return head + " not found: " + strings.Join(rs, "; ")
}

// loadModule is the only entry of package.loaders: NAME must be a plain
// name, and the module is LibDir/NAME.lua. It returns why it found nothing
// (require puts it after "not found:"; requireMessage makes that one line)
// or the compiled module.
func (s *state) loadModule(L *lua.LState) int {
	name := L.CheckString(1)
	if !modNameRE.MatchString(name) {
		L.Push(lua.LString(fmt.Sprintf("require only loads lib/NAME.lua, NAME made of letters, digits, _ and - (%q is refused)", name)))
		return 1
	}
	if s.opts.LibDir == "" {
		L.Push(lua.LString("no lib directory"))
		return 1
	}
	path := filepath.Join(s.opts.LibDir, name+".lua")
	if !slices.Contains(s.requires, path) {
		s.requires = append(s.requires, path)
	}
	src, err := ReadSource(path)
	var le *LoadError
	if errors.As(err, &le) {
		L.RaiseError("error loading module %s: %v", name, err)
	}
	if err != nil {
		L.Push(lua.LString("no file " + path))
		return 1
	}
	c, err := Compile(path, src)
	if err != nil {
		L.RaiseError("error loading module %s: %v", name, err)
	}
	L.Push(L.NewFunctionFromProto(c.Proto))
	return 1
}

// loadstring(s [, chunkname]) compiles s as load and loadstring of Lua 5.1
// do, through compileChunk: at most MaxSourceLen bytes, nesting and function
// literals bounded, .. bounded, and a parse that stops when the call into
// Lua runs out of time. It returns the function, or nil and the message.
func (s *state) loadstring(L *lua.LState) int {
	return s.loadChunk(L, L.CheckString(1), L.OptString(2, "<string>"))
}

// load(fn [, chunkname]) calls fn for the pieces of the chunk until it
// returns nil or an empty string; pieces past MaxSourceLen are refused.
func (s *state) load(L *lua.LState) int {
	fn := L.CheckFunction(1)
	name := L.OptString(2, "=(load)")
	var b strings.Builder
	for {
		L.Push(fn)
		L.Call(0, 1)
		piece := L.Get(-1)
		L.Pop(1)
		if piece == lua.LNil {
			break
		}
		if !isStringy(piece) {
			L.Push(lua.LNil)
			L.Push(lua.LString("reader function must return a string"))
			return 2
		}
		p := lua.LVAsString(piece)
		if p == "" {
			break
		}
		if b.Len()+len(p) > MaxSourceLen {
			L.Push(lua.LNil)
			L.Push(lua.LString(fmt.Sprintf("%s: %s", name, tooLong(int64(b.Len()+len(p)), MaxSourceLen).msg)))
			return 2
		}
		b.WriteString(p)
	}
	return s.loadChunk(L, b.String(), name)
}

func (s *state) loadChunk(L *lua.LState, src, name string) int {
	name = strings.TrimPrefix(name, "=") // Lua's "=name": name as it is
	ctx := L.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	proto, _, err := compileChunk(ctx, name, []byte(src))
	if err != nil {
		if ctx.Err() != nil {
			// The call's limit ended the parse: raise, as the limit would
			// at the next instruction.
			L.RaiseError("%v", context.Cause(ctx))
		}
		L.Push(lua.LNil)
		L.Push(lua.LString(syntaxError(name, err, lastLine([]byte(src))).Error()))
		return 2
	}
	L.Push(L.NewFunctionFromProto(proto))
	return 1
}

// print writes its arguments, tab-separated, to the daemon log.
func (s *state) print(L *lua.LState) int {
	parts := make([]string, L.GetTop())
	for i := range parts {
		parts[i] = L.ToStringMeta(L.Get(i + 1)).String()
	}
	s.Log(strings.Join(parts, "\t"))
	return 0
}
