package luaapi

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
	luar "layeh.com/gopher-luar"

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
	j.DepsByReads, j.Impure = ci.byReads, ci.impure
	j.slips = ci.slips
	return nil
}

// Warnings returns what in the file loads but is most likely a mistake,
// in line order: a condition helper given a bare name that is not a local
// (changes(x) for changes('x')), in string conditions and in code.
func (f *File) Warnings() []Warning {
	var out []Warning
	seen := map[Warning]bool{}
	add := func(ws []Warning) {
		for _, w := range ws {
			w.Path = f.Path
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	add(f.slips)
	for _, j := range f.Jobs {
		add(j.slips)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Line < out[b].Line })
	return out
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
		j.DepsAll, j.Impure = true, true
		return
	}
	ci := s.fileAST().funcCond(p.LineDefined, p.LastLineDefined)
	j.Cond, j.Deps, j.DepsAll = ci.text, ci.deps, ci.all
	j.DepsByReads, j.Impure = ci.byReads, ci.impure
}

func (s *state) fileAST() *fileAST {
	if s.ast == nil {
		s.ast = astOf(s.compiled, s.src)
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
	ev := j.Evaluate(in)
	return ev.OK, ev.Read, ev.Err
}

// Evaluation is the outcome of one evaluation of a condition (see Eval).
type Evaluation struct {
	OK   bool
	Read []string
	// AskedReloaded says the condition called reloaded(): a job whose
	// result depends on the load starts each load afresh.
	AskedReloaded bool
	Err           error
}

// Evaluate is Eval, also telling whether the condition called reloaded().
func (j *Job) Evaluate(in EvalInput) Evaluation {
	if j.Kind != When || j.cond == nil {
		return Evaluation{Err: fmt.Errorf("job %s has no condition", j.Name)}
	}
	f := &frame{phase: phaseCond, job: j, in: in}
	rets, err := j.File.s.call(f, j.cond, 1)
	if err != nil {
		return Evaluation{Read: f.reads, AskedReloaded: f.askedReloaded, Err: j.File.s.hint(err, f.reads)}
	}
	return Evaluation{OK: lua.LVAsBool(rets[0]), Read: f.reads, AskedReloaded: f.askedReloaded}
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
	running := info.Running
	if running == nil {
		running = s.opts.Host.Running()
	}
	t := lualib.PreInfoTable(s.L, j.Name, info.Serial, info.Vars, running)
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

// CallPost calls the job's post function with the run's result: a
// lualib.Result, handed to Lua by gopher-luar as a read-only object with
// the fields job_name, serial, code, signal, error, tmpdir, start_time,
// end_time, duration, output_size, attempt, final (times in Unix seconds, duration in
// seconds, signal and error nil when none) and the method r:output(), the
// output as stored. It does nothing when the job has no post.
func (j *Job) CallPost(r whenlua.Run, tmpdir string) error {
	if !j.HasPost {
		return nil
	}
	r.Job = j.Name
	return j.callHook(phasePost, j.post, lualib.NewResult(r, tmpdir))
}

// CallOnSilence calls the job's on_silence hook with a lualib.Silence, a
// read-only object with the fields job_name, expect (seconds),
// last_success (Unix seconds, nil when none is known), since and
// silent_since (Unix seconds). It does nothing when the job has no hook.
func (j *Job) CallOnSilence(info lualib.Silence) error {
	if !j.HasOnSilence {
		return nil
	}
	info.JobName = j.Name
	return j.callHook(phaseSilence, j.onSilence, info)
}

// callHook calls fn, a hook of j run in phase ph, with v, which
// gopher-luar hands to Lua as a read-only object.
func (j *Job) callHook(ph phase, fn *lua.LFunction, v any) error {
	s := j.File.s
	if s.L == nil {
		return ErrClosed
	}
	_, err := s.call(&frame{phase: ph, job: j}, fn, 0, luar.New(s.L, v))
	return err
}
