package luaapi

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/lualib"
)

// stringCond sets up a string condition: one Lua expression run in its own
// environment, where the exempt names (helpers, vars, tonumber, tostring,
// string, math) are themselves and every other name is a variable.
func (s *state) stringCond(j *Job, expr string) error {
	ci := s.fileAST().stringCond(j.Line, expr)
	if ci.err != nil {
		return ci.err
	}
	fn := s.L.NewFunctionFromProto(ci.proto)
	fn.Env = s.stringCondEnv()
	j.cond, j.Cond = fn, expr
	j.Deps, j.DepsAll = ci.deps, ci.all
	return nil
}

// stringCondEnv returns the environment every string condition of the
// file shares. Sharing is safe: an expression cannot assign a global, and
// none of the exempt names can change an environment.
func (s *state) stringCondEnv() *lua.LTable {
	if s.condEnvTable == nil {
		L := s.L
		env := L.CreateTable(0, len(s.condEnv))
		for k, v := range s.condEnv {
			env.RawSetString(k, v)
		}
		mt := L.CreateTable(0, 1)
		mt.RawSetString("__index", s.varIndex)
		L.SetMetatable(env, mt)
		s.condEnvTable = env
	}
	return s.condEnvTable
}

// funcCond sets up a function condition: its source text is its Cond, its
// syntax tree (found by the lines its proto records) gives the deps. A
// function defined in another file (a lib module) may read anything.
func (s *state) funcCond(j *Job, fn *lua.LFunction) {
	j.cond = fn
	p := fn.Proto
	if p == nil || p.SourceName != s.path {
		j.Cond = fmt.Sprintf("function at %s", s.describe(fn))
		j.DepsAll = true
		return
	}
	ci := s.fileAST().funcCond(p.LineDefined, p.LastLineDefined)
	j.Cond, j.Deps, j.DepsAll = ci.text, ci.deps, ci.all
}

func (s *state) fileAST() *fileAST {
	if s.ast == nil {
		s.ast = astOf(s.proto, s.src)
	}
	return s.ast
}

// funcText returns the source of the function literal that starts on line
// and ends on last: from its "function" keyword to its "end", found with
// gopher-lua's scanner (so strings and comments do not confuse it), without
// what shares those lines. When that fails it returns the whole lines.
func funcText(src []byte, line, last int) string {
	lines := strings.SplitAfter(string(src), "\n")
	if line < 1 || last > len(lines) || line > last {
		return ""
	}
	text := strings.Join(lines[line-1:last], "")
	whole := strings.TrimRight(text, "\n")
	type tok struct{ typ, line, col int }
	var toks []tok
	sc := parse.NewScanner(strings.NewReader(text), "")
	lx := &parse.Lexer{}
	for {
		t, err := sc.Scan(lx)
		if err != nil {
			break
		}
		if t.Type == parse.EOF || t.Type == 0 {
			break
		}
		toks = append(toks, tok{t.Type, t.Pos.Line, t.Pos.Column})
	}
	offset := func(t tok) int {
		o := 0
		for _, l := range lines[line-1 : line-1+t.line-1] {
			o += len(l)
		}
		return o + t.col - 1
	}
	for i, start := range toks {
		if start.line != 1 {
			break
		}
		if start.typ != parse.TFunction {
			continue
		}
		depth := 0
		for _, t := range toks[i:] {
			switch t.typ {
			case parse.TFunction, parse.TIf, parse.TDo:
				depth++
			case parse.TEnd:
				depth--
			}
			if depth == 0 {
				if t.line == last-line+1 {
					return text[offset(start) : offset(t)+len("end")]
				}
				break
			}
		}
	}
	return whole
}

func (s *state) describe(fn *lua.LFunction) string {
	if fn.Proto == nil {
		return "a Go function"
	}
	return fmt.Sprintf("%s:%d", fn.Proto.SourceName, fn.Proto.LineDefined)
}

// EvalInput is what a condition's helpers see besides the current values.
type EvalInput struct {
	// Evaluated is false before the job's first evaluation: prev() is then
	// nil for every name.
	Evaluated bool
	// Prev is the previous snapshot; a name missing from it was unset.
	Prev map[string]whenlua.Value
	// Reloaded is what reloaded() returns.
	Reloaded bool
}

// Eval evaluates a when-job's condition under the time limit, with current
// values from Host.Get. It returns the truthiness of the result, every
// variable name read (bare names, vars.x, get(x), helper arguments) in the
// order first read, and the error (a *CallError saying file:line; ok is then
// false). Set and whisper raise inside a condition.
func (j *Job) Eval(in EvalInput) (ok bool, read []string, err error) {
	if j.Kind != When || j.cond == nil {
		return false, nil, fmt.Errorf("job %s has no condition", j.Name)
	}
	f := &frame{phase: phaseCond, job: j, in: in}
	rets, err := j.File.s.call(f, j.cond, 1)
	if err != nil {
		return false, f.reads, j.File.s.hint(err, f.reads)
	}
	return lua.LVAsBool(rets[0]), f.reads, nil
}

// hint adds to a condition's type error the variables it read that may be
// behind it: those unset when a nil was compared or computed with, and,
// when a string was compared, those holding a string that reads as a
// number (a value set without --type is a string; arithmetic converts such
// strings, comparisons do not). Only names, so that the message, and the
// log line that repeats only when the message changes, stays the same
// while the values change.
func (s *state) hint(err error, reads []string) error {
	var ce *CallError
	if !errors.As(err, &ce) || ce.Timeout || ce.Memory {
		return err
	}
	compare := strings.HasPrefix(ce.Msg, "attempt to compare")
	if !compare && !strings.HasPrefix(ce.Msg, "cannot perform") {
		return err
	}
	var unset, numeric []string
	for _, name := range reads {
		v := s.opts.Host.Get(name)
		switch {
		case v.IsNil() && strings.Contains(ce.Msg, "nil"):
			unset = append(unset, name)
		case compare && v.T == whenlua.TypeString && strings.Contains(ce.Msg, "string"):
			if _, err := whenlua.ParseValue(whenlua.TypeFloat, v.S); err == nil {
				numeric = append(numeric, name)
			}
		}
	}
	var notes []string
	if len(unset) > 0 {
		notes = append(notes, "unset: "+nameList(unset))
	}
	if len(numeric) > 0 {
		notes = append(notes, "strings: "+nameList(numeric)+"; set numbers with --type int or --type float")
	}
	if len(notes) == 0 {
		return err
	}
	hinted := *ce
	hinted.Msg += " (" + strings.Join(notes, "; ") + ")"
	return &hinted
}

// nameList joins names, the first five of them and how many more.
func nameList(names []string) string {
	const shown = 5
	if len(names) <= shown {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:shown], ", "), len(names)-shown)
}

// PreInfo is what a pre function gets (SPEC §3).
type PreInfo struct {
	Serial uint64
	Vars   map[string]whenlua.Value
	// Running are the runs already running (not this attempt); nil asks
	// Host.Running.
	Running []whenlua.Run
}

// CallPre calls the job's pre function with the info table { job_name,
// serial, variables = {...}, running = { {job_name, serial, pid,
// start_time}, ... } } and returns the truthiness of its result (true when
// the job has no pre) and, when it refuses, the string it returned after
// false as its reason, if any.
func (j *Job) CallPre(info PreInfo) (ok bool, reason string, err error) {
	if !j.HasPre {
		return true, "", nil
	}
	s := j.File.s
	if s.L == nil {
		return false, "", ErrClosed
	}
	L := s.L
	t := L.CreateTable(0, 4)
	t.RawSetString("job_name", lua.LString(j.Name))
	t.RawSetString("serial", lua.LNumber(info.Serial))
	t.RawSetString("variables", valuesTable(L, info.Vars))
	running := info.Running
	if running == nil {
		running = s.opts.Host.Running()
	}
	rt := L.CreateTable(len(running), 0)
	for _, r := range running {
		e := L.CreateTable(0, 4)
		e.RawSetString("job_name", lua.LString(r.Job))
		e.RawSetString("serial", lua.LNumber(r.Serial))
		e.RawSetString("pid", lua.LNumber(r.PID))
		e.RawSetString("start_time", unixSeconds(r.Start))
		rt.Append(e)
	}
	t.RawSetString("running", rt)
	rets, err := s.call(&frame{phase: phasePre, job: j}, j.pre, 2, t)
	if err != nil {
		return false, "", err
	}
	if lua.LVAsBool(rets[0]) {
		return true, "", nil
	}
	if r, isStr := rets[1].(lua.LString); isStr {
		reason = clip(strings.Join(strings.Fields(string(r)), " "), 200)
	}
	return false, reason, nil
}

// CallPost calls the job's post function with the result table { job_name,
// serial, code, signal, tmpdir, output, start_time, end_time, duration }
// (times in Unix seconds, duration in seconds, signal nil when none; error
// is set when the run failed to start, timed out or was lost). It does
// nothing when the job has no post.
func (j *Job) CallPost(r whenlua.Run, tmpdir, output string) error {
	if !j.HasPost {
		return nil
	}
	s := j.File.s
	if s.L == nil {
		return ErrClosed
	}
	L := s.L
	t := L.CreateTable(0, 10)
	t.RawSetString("job_name", lua.LString(j.Name))
	t.RawSetString("serial", lua.LNumber(r.Serial))
	t.RawSetString("code", lua.LNumber(r.Code))
	if r.Signal != "" {
		t.RawSetString("signal", lua.LString(r.Signal))
	}
	if r.Error != "" {
		t.RawSetString("error", lua.LString(r.Error))
	}
	t.RawSetString("tmpdir", lua.LString(tmpdir))
	t.RawSetString("output", lua.LString(output))
	t.RawSetString("start_time", unixSeconds(r.Start))
	t.RawSetString("end_time", unixSeconds(r.End))
	t.RawSetString("duration", lua.LNumber(r.Duration().Seconds()))
	// The record stands for the run while post runs: mailto reads the
	// output through it, not through its output field.
	if s.runs == nil {
		s.runs = map[*lua.LTable]string{}
	}
	s.runs[t] = output
	defer delete(s.runs, t)
	_, err := s.call(&frame{phase: phasePost, job: j}, j.post, 0, t)
	return err
}

func valuesTable(L *lua.LState, vs map[string]whenlua.Value) *lua.LTable {
	names := make([]string, 0, len(vs))
	for n := range vs {
		names = append(names, n)
	}
	sort.Strings(names)
	t := L.CreateTable(0, len(vs))
	for _, n := range names {
		t.RawSetString(n, lualib.ToLua(vs[n]))
	}
	return t
}
