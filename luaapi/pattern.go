package luaapi

import (
	"context"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Lua 5.1 patterns (reference manual §5.4.1), matched by backtracking as
// Lua does, with a budget. A pattern is one VM instruction to the time
// limit: without a bound, ".-.-.-.-b" on a long subject runs for minutes.
// Every step of the matcher counts against PatternBudget, and items nest
// (each quantifier and capture is a level of recursion) at most
// maxPatternDepth deep, as Lua 5.2 limits them.

const (
	maxCaptures     = 32
	maxPatternDepth = 200
	capUnfinished   = -1
	capPosition     = -2
)

// patternError is raised (by panic, recovered in the library function) for
// a malformed pattern; errTooComplex for one over its budget.
type patternError string

func (e patternError) Error() string { return string(e) }

const (
	errTooComplex = patternError("too complex")
	errStopped    = patternError("stopped") // the call's context is done
)

type capture struct{ start, len int }

type matcher struct {
	ctx      context.Context // of the call into Lua; nil outside one
	src, pat string
	level    int
	caps     [maxCaptures]capture
	steps    int
	depth    int
}

func (m *matcher) step() {
	m.steps++
	if m.steps > PatternBudget {
		panic(errTooComplex)
	}
	if m.steps&0xffff == 0 && m.ctx != nil && m.ctx.Err() != nil {
		panic(errStopped)
	}
}

// match matches the pattern from p against the subject from s and returns
// where the match ends, or -1.
func (m *matcher) match(s, p int) int {
	m.depth++
	if m.depth > maxPatternDepth {
		panic(errTooComplex)
	}
	e := m.doMatch(s, p)
	m.depth--
	return e
}

func (m *matcher) doMatch(s, p int) int {
	for {
		m.step()
		if p == len(m.pat) {
			return s
		}
		switch m.pat[p] {
		case '(':
			if p+1 < len(m.pat) && m.pat[p+1] == ')' {
				return m.startCapture(s, p+2, capPosition)
			}
			return m.startCapture(s, p+1, capUnfinished)
		case ')':
			return m.endCapture(s, p+1)
		case '$':
			if p+1 == len(m.pat) {
				if s == len(m.src) {
					return s
				}
				return -1
			}
		case '%':
			if p+1 < len(m.pat) {
				switch c := m.pat[p+1]; {
				case c == 'b':
					if s = m.balance(s, p+2); s == -1 {
						return -1
					}
					p += 4
					continue
				case c == 'f':
					p += 2
					if p >= len(m.pat) || m.pat[p] != '[' {
						panic(patternError("missing '[' after '%f' in pattern"))
					}
					ep := m.classEnd(p)
					var prev, cur byte
					if s > 0 {
						prev = m.src[s-1]
					}
					if s < len(m.src) {
						cur = m.src[s]
					}
					if m.inSet(prev, p, ep-1) || !m.inSet(cur, p, ep-1) {
						return -1
					}
					p = ep
					continue
				case c >= '0' && c <= '9':
					if s = m.backref(s, c); s == -1 {
						return -1
					}
					p += 2
					continue
				}
			}
		}
		ep := m.classEnd(p)
		ok := s < len(m.src) && m.single(m.src[s], p, ep)
		if ep < len(m.pat) {
			switch m.pat[ep] {
			case '?':
				if ok {
					if e := m.match(s+1, ep+1); e != -1 {
						return e
					}
				}
				p = ep + 1
				continue
			case '*':
				return m.maxExpand(s, p, ep)
			case '+':
				if !ok {
					return -1
				}
				return m.maxExpand(s+1, p, ep)
			case '-':
				return m.minExpand(s, p, ep)
			}
		}
		if !ok {
			return -1
		}
		s++
		p = ep
	}
}

// classEnd returns the end of the single-character class at p.
func (m *matcher) classEnd(p int) int {
	c := m.pat[p]
	p++
	switch c {
	case '%':
		if p >= len(m.pat) {
			panic(patternError("malformed pattern (ends with '%')"))
		}
		return p + 1
	case '[':
		if p < len(m.pat) && m.pat[p] == '^' {
			p++
		}
		for { // the first character of a set may be ']'
			if p >= len(m.pat) {
				panic(patternError("malformed pattern (missing ']')"))
			}
			c := m.pat[p]
			p++
			if c == '%' && p < len(m.pat) {
				p++
			}
			if p < len(m.pat) && m.pat[p] == ']' {
				return p + 1
			}
		}
	}
	return p
}

// single reports whether c matches the class at p..ep.
func (m *matcher) single(c byte, p, ep int) bool {
	switch m.pat[p] {
	case '.':
		return true
	case '%':
		return classMatch(c, m.pat[p+1])
	case '[':
		return m.inSet(c, p, ep-1)
	}
	return m.pat[p] == c
}

// inSet reports whether c is in the set [...] from p ('[') to end (']').
func (m *matcher) inSet(c byte, p, end int) bool {
	want := true
	p++
	if m.pat[p] == '^' {
		want = false
		p++
	}
	for ; p < end; p++ {
		switch {
		case m.pat[p] == '%' && p+1 < end:
			p++
			if classMatch(c, m.pat[p]) {
				return want
			}
		case p+2 < end && m.pat[p+1] == '-':
			if m.pat[p] <= c && c <= m.pat[p+2] {
				return want
			}
			p += 2
		case m.pat[p] == c:
			return want
		}
	}
	return !want
}

// classMatch reports whether c is in the class %cl (C locale); for a
// character that names no class, whether c is that character.
func classMatch(c, cl byte) bool {
	var in bool
	switch cl | 0x20 {
	case 'a':
		in = isAlpha(c)
	case 'c':
		in = c < 32 || c == 127
	case 'd':
		in = '0' <= c && c <= '9'
	case 'l':
		in = 'a' <= c && c <= 'z'
	case 'p':
		in = c > 32 && c < 127 && !isAlpha(c) && !('0' <= c && c <= '9')
	case 's':
		in = c == ' ' || ('\t' <= c && c <= '\r')
	case 'u':
		in = 'A' <= c && c <= 'Z'
	case 'w':
		in = isAlpha(c) || ('0' <= c && c <= '9')
	case 'x':
		in = ('0' <= c && c <= '9') || ('a' <= c|0x20 && c|0x20 <= 'f')
	case 'z':
		in = c == 0
	default:
		return cl == c
	}
	if 'A' <= cl && cl <= 'Z' {
		return !in
	}
	return in
}

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// maxExpand matches as many characters of the class as it can, then gives
// them back one at a time until the rest of the pattern matches.
func (m *matcher) maxExpand(s, p, ep int) int {
	n := 0
	for s+n < len(m.src) && m.single(m.src[s+n], p, ep) {
		m.step()
		n++
	}
	for ; n >= 0; n-- {
		if e := m.match(s+n, ep+1); e != -1 {
			return e
		}
	}
	return -1
}

// minExpand matches as few characters of the class as the rest allows.
func (m *matcher) minExpand(s, p, ep int) int {
	for {
		if e := m.match(s, ep+1); e != -1 {
			return e
		}
		if s >= len(m.src) || !m.single(m.src[s], p, ep) {
			return -1
		}
		s++
	}
}

func (m *matcher) startCapture(s, p, what int) int {
	if m.level >= maxCaptures {
		panic(patternError("too many captures"))
	}
	m.caps[m.level] = capture{s, what}
	m.level++
	e := m.match(s, p)
	if e == -1 {
		m.level--
	}
	return e
}

func (m *matcher) endCapture(s, p int) int {
	l := -1
	for i := m.level - 1; i >= 0; i-- {
		if m.caps[i].len == capUnfinished {
			l = i
			break
		}
	}
	if l < 0 {
		panic(patternError("invalid pattern capture"))
	}
	m.caps[l].len = s - m.caps[l].start
	e := m.match(s, p)
	if e == -1 {
		m.caps[l].len = capUnfinished
	}
	return e
}

// balance matches %bxy at s, the x and y at p.
func (m *matcher) balance(s, p int) int {
	if p+1 >= len(m.pat) {
		panic(patternError("malformed pattern (missing arguments to '%b')"))
	}
	if s >= len(m.src) || m.src[s] != m.pat[p] {
		return -1
	}
	open, close := m.pat[p], m.pat[p+1]
	depth := 1
	for i := s + 1; i < len(m.src); i++ {
		m.step()
		switch m.src[i] {
		case close:
			if depth--; depth == 0 {
				return i + 1
			}
		case open:
			depth++
		}
	}
	return -1
}

// backref matches %1-%9 at s: the text of that capture again.
func (m *matcher) backref(s int, d byte) int {
	i := int(d - '1')
	if i < 0 || i >= m.level || m.caps[i].len == capUnfinished {
		panic(patternError(fmt.Sprintf("invalid capture index %%%d", i+1)))
	}
	c := m.caps[i]
	n := max(c.len, 0)
	m.steps += n
	if len(m.src)-s >= n && m.src[c.start:c.start+n] == m.src[s:s+n] {
		return s + n
	}
	return -1
}

// captureValue is capture i of a match from s to e (the whole match when
// the pattern has no captures and i is 0).
func (m *matcher) captureValue(i, s, e int) lua.LValue {
	if i >= m.level {
		if i != 0 {
			panic(patternError(fmt.Sprintf("invalid capture index %%%d", i+1)))
		}
		return lua.LString(m.src[s:e])
	}
	c := m.caps[i]
	switch c.len {
	case capUnfinished:
		panic(patternError("unfinished capture"))
	case capPosition:
		return lua.LNumber(c.start + 1)
	}
	return lua.LString(m.src[c.start : c.start+c.len])
}

// captures pushes the captures of a match from s to e (the whole match
// when there are none and whole is set) and returns how many.
func (m *matcher) captures(L *lua.LState, s, e int, whole bool) int {
	n := m.level
	if n == 0 && whole {
		n = 1
	}
	for i := 0; i < n; i++ {
		L.Push(m.captureValue(i, s, e))
	}
	return n
}

// patternCall runs fn, turning a pattern error raised inside into a Lua
// error of string.name.
func patternCall(L *lua.LState, name string, m *matcher, fn func() int) (n int) {
	m.ctx = L.Context()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		pe, ok := r.(patternError)
		if !ok {
			panic(r)
		}
		if pe == errStopped {
			L.RaiseError("string.%s: %v", name, context.Cause(m.ctx))
		}
		if pe == errTooComplex {
			L.RaiseError("string.%s: pattern %q is too complex for a subject of %d bytes (more than %d matching steps, or items nested more than %d deep, in one call)",
				name, clip(m.pat, 40), len(m.src), PatternBudget, maxPatternDepth)
		}
		L.RaiseError("string.%s: %s", name, string(pe))
	}()
	return fn()
}

// startAt is where find and match start: init (from 1; negative counts
// from the end), within the subject.
func startAt(L *lua.LState, n, subjectLen int) int {
	init := L.OptInt(n, 1)
	if init < 0 {
		init += subjectLen + 1
	}
	return min(max(init-1, 0), subjectLen)
}

// strFind is string.find, and string.match when find is false.
func strFind(find bool) lua.LGFunction {
	name := map[bool]string{true: "find", false: "match"}[find]
	return func(L *lua.LState) int {
		src := L.CheckString(1)
		pat := L.CheckString(2)
		init := startAt(L, 3, len(src))
		if find && (lua.LVAsBool(L.Get(4)) || !strings.ContainsAny(pat, "^$*+?.([%-")) {
			i := strings.Index(src[init:], pat)
			if i < 0 {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(lua.LNumber(init + i + 1))
			L.Push(lua.LNumber(init + i + len(pat)))
			return 2
		}
		m := &matcher{src: src, pat: pat}
		return patternCall(L, name, m, func() int {
			p := 0
			anchor := strings.HasPrefix(pat, "^")
			if anchor {
				p = 1
			}
			for s := init; s <= len(src); s++ {
				m.level = 0
				if e := m.match(s, p); e != -1 {
					if find {
						L.Push(lua.LNumber(s + 1))
						L.Push(lua.LNumber(e))
						return m.captures(L, s, e, false) + 2
					}
					return m.captures(L, s, e, true)
				}
				if anchor {
					break
				}
			}
			L.Push(lua.LNil)
			return 1
		})
	}
}

// strGmatch is string.gmatch (and gfind): an iterator over the matches.
// The first match is searched for at once, so that a pattern too complex
// for its subject is refused where gmatch is called; each later call of
// the iterator has a budget of its own. As in Lua 5.1, '^' is not an
// anchor here, and after an empty match the next search starts one
// character on.
func strGmatch(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	pos := 0
	next := func() []lua.LValue {
		m := &matcher{src: src, pat: pat}
		var found []lua.LValue
		patternCall(L, "gmatch", m, func() int {
			for s := pos; s <= len(src); s++ {
				m.level = 0
				if e := m.match(s, 0); e != -1 {
					pos = e
					if e == s {
						pos++
					}
					n := max(m.level, 1)
					for i := range n {
						found = append(found, m.captureValue(i, s, e))
					}
					return 0
				}
			}
			pos = len(src) + 1
			return 0
		})
		return found
	}
	first, pending := next(), true
	L.Push(L.NewFunction(func(L *lua.LState) int {
		vs := first
		if pending {
			pending, first = false, nil
		} else {
			vs = next()
		}
		for _, v := range vs {
			L.Push(v)
		}
		return len(vs)
	}))
	return 1
}

// strGsub is string.gsub, building its result in one pass and refusing
// one longer than MaxBuildLen. In a replacement string %0 is the whole
// match, %1-%9 the captures, %% a percent sign; a table or function
// replacement gets the first capture (or the whole match), and false or
// nil keeps the match.
func strGsub(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTNumber, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	limit := L.OptInt(4, len(src)+1)
	m := &matcher{src: src, pat: pat}
	var b strings.Builder
	grow := func(n int) {
		if b.Len()+n > MaxBuildLen {
			L.RaiseError("string.gsub: a result of more than %d bytes", MaxBuildLen)
		}
	}
	n := 0
	patternCall(L, "gsub", m, func() int {
		p := 0
		anchor := strings.HasPrefix(pat, "^")
		if anchor {
			p = 1
		}
		s := 0
		for n < limit {
			m.level = 0
			e := m.match(s, p)
			if e != -1 {
				n++
				m.replace(L, &b, grow, repl, s, e)
			}
			if e != -1 && e > s {
				s = e
			} else if s < len(src) {
				grow(1)
				b.WriteByte(src[s])
				s++
			} else {
				break
			}
			if anchor {
				break
			}
		}
		grow(len(src) - s)
		b.WriteString(src[s:])
		return 0
	})
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(n))
	return 2
}

// replace writes the replacement of the match from s to e.
func (m *matcher) replace(L *lua.LState, b *strings.Builder, grow func(int), repl lua.LValue, s, e int) {
	var v lua.LValue
	switch r := repl.(type) {
	case *lua.LTable:
		v = L.GetTable(r, m.captureValue(0, s, e))
	case *lua.LFunction:
		top := L.GetTop()
		L.Push(r)
		n := m.captures(L, s, e, true)
		L.Call(n, 1)
		v = L.Get(-1)
		L.SetTop(top)
	default:
		rs := lua.LVAsString(r)
		for i := 0; i < len(rs); i++ {
			c := rs[i]
			if c != '%' || i+1 == len(rs) {
				grow(1)
				b.WriteByte(c)
				continue
			}
			i++
			switch d := rs[i]; {
			case d == '0':
				grow(e - s)
				b.WriteString(m.src[s:e])
			case d >= '1' && d <= '9':
				c := lua.LVAsString(m.captureValue(int(d-'1'), s, e))
				grow(len(c))
				b.WriteString(c)
			default:
				grow(1)
				b.WriteByte(d)
			}
		}
		return
	}
	switch v := v.(type) {
	case lua.LString, lua.LNumber:
		s := lua.LVAsString(v)
		grow(len(s))
		b.WriteString(s)
	case *lua.LNilType, lua.LBool:
		if v == lua.LNil || v == lua.LFalse {
			grow(e - s)
			b.WriteString(m.src[s:e])
		} else {
			L.RaiseError("invalid replacement value (a boolean)")
		}
	default:
		L.RaiseError("invalid replacement value (a %s)", v.Type())
	}
}
