package luaapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/lualib"
)

// The REPL (`whenlua repl`) evaluates what the user types as a string
// condition would be evaluated, in a sandboxed state of its own:
//
//   - An unknown bare name is a variable of the snapshot (nil when unset),
//     even where Lua has a global of that name (load, type, next...). The
//     names that are not variables are those of string conditions (changes,
//     increases, decreases, prev, reloaded, vars, tonumber, tostring, string,
//     math), the REPL's own (print, test, set, whisper, refresh, jobs, why, help)
//     and _G, through which every other Lua global is reached (_G.pairs,
//     _G.type). A global assigned at the prompt (f = function() ... end) is
//     kept for the session and hides the variable of that name; assigning a
//     name that is a set variable raises, since it would only hide it.
//   - The snapshot is taken when the REPL starts and by refresh(). The
//     helpers compare it with the previous snapshot, the one refresh()
//     replaced: before the first refresh there is none, so prev(x) is nil,
//     changes(x) is true for every set x and reloaded() is true, as at a
//     job's first evaluation after a load.

// ReplDefaultTimeout is the time limit of one input chunk when
// ReplOptions.Timeout is 0.
const ReplDefaultTimeout = 10 * time.Second

// ReplChunkName is the chunk name of REPL input: errors read "stdin:1: ...".
const ReplChunkName = "stdin"

// ReplResult is what a set or a test did, or would do.
type ReplResult struct {
	// Triggered names the jobs that became (or would become) due, in the
	// order they run.
	Triggered []string
	// CondErrors are the errors of the conditions evaluated, as "job:
	// file:line: message" (a failing condition counts as false).
	CondErrors []string
}

// ReplBackend serves the REPL's commands: the daemon (through the socket),
// or job files loaded in the process (Local). Its methods are called on the
// goroutine that calls Repl.Eval.
type ReplBackend interface {
	// Vars returns every set variable: the snapshot refresh() takes.
	Vars() (map[string]whenlua.Value, error)
	// Set applies assignments: ModeTest changes nothing and reports the
	// jobs that would run; ModeSet and ModeWhisper change the variables
	// (a backend may refuse them with an error, which is raised in Lua).
	Set(mode whenlua.Mode, as []whenlua.Assignment) (ReplResult, error)
	// Names returns every loaded job.
	Names() ([]whenlua.JobInfo, error)
	// Why returns a job's state and its newest evaluations (`whenlua why`).
	Why(job string) (whenlua.WhyReport, error)
}

// ReplOptions configure NewRepl.
type ReplOptions struct {
	Backend ReplBackend
	// Out receives print, the values of expressions and the listings of
	// test, set, jobs, vars and help.
	Out io.Writer
	// LibDir is where _G.require finds modules, as in job files.
	LibDir string
	// Timeout limits one input chunk (ReplDefaultTimeout when 0).
	Timeout time.Duration
	// SetHint is the message set and whisper raise when the backend
	// refuses them; empty: the backend's error.
	SetHint string
}

// Repl is one REPL session: a sandboxed Lua state, the current and previous
// snapshots of the variables, and the backend. It is not safe for
// concurrent use; one goroutine calls Eval and Close.
type Repl struct {
	s    *state
	env  *lua.LTable
	opts ReplOptions
	cur  map[string]whenlua.Value
	prev map[string]whenlua.Value // nil before the first refresh
}

// replHost serves the state's library from the session's snapshot.
type replHost struct{ r *Repl }

func (h replHost) Get(name string) whenlua.Value { return h.r.cur[name] }
func (h replHost) Set(string, []whenlua.Assignment, bool) error {
	return errors.New("use set{...} or test{...} at the prompt")
}
func (h replHost) Log(_, msg string)       { fmt.Fprintln(h.r.opts.Out, msg) }
func (h replHost) Running() []whenlua.Run  { return nil }
func (h replHost) SendMail(string, []byte) {}

// NewRepl opens a session and takes the first snapshot from the backend.
func NewRepl(opts ReplOptions) (*Repl, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = ReplDefaultTimeout
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	r := &Repl{opts: opts}
	vs, err := opts.Backend.Vars()
	if err != nil {
		return nil, err
	}
	r.cur = vs
	s, err := newState(ReplChunkName, nil, nil, Options{LibDir: opts.LibDir, Timeout: opts.Timeout, Host: replHost{r}})
	if err != nil {
		return nil, err
	}
	r.s = s
	L := s.L
	env := L.NewTable()
	for name, v := range s.condEnv {
		env.RawSetString(name, v)
	}
	if vt, ok := L.GetGlobal("vars").(*lua.LTable); ok {
		if mt, ok := vt.Metatable.(*lua.LTable); ok {
			mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int {
				fmt.Fprint(r.opts.Out, r.listVars())
				return 0
			}))
			mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
				L.Push(lua.LString(strings.TrimSuffix(r.listVars(), "\n")))
				return 1
			}))
		}
	}
	// The sandbox's print logs through replHost, which writes to Out.
	env.RawSetString("print", L.GetGlobal("print"))
	for name, fn := range map[string]lua.LGFunction{
		"test":    r.assign("test", whenlua.ModeTest),
		"set":     r.assign("set", whenlua.ModeSet),
		"whisper": r.assign("whisper", whenlua.ModeWhisper),
		"refresh": r.refresh,
		"jobs":    r.jobs,
		"why":     r.why,
		"help":    r.help,
	} {
		env.RawSetString(name, L.NewFunction(fn))
	}
	env.RawSetString("_G", L.G.Global)
	env.RawSetString(concatName, L.GetGlobal(concatName))
	mt := L.NewTable()
	mt.RawSetString("__index", s.varIndex)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		t, k, v := L.CheckTable(1), L.Get(2), L.Get(3)
		if ks, ok := k.(lua.LString); ok {
			if _, set := r.cur[string(ks)]; set {
				L.RaiseError("%s is a variable: assigning it here would only hide it (try test{%s = ...})", ks, ks)
			}
		}
		t.RawSet(k, v)
		return 0
	}))
	L.SetMetatable(env, mt)
	r.env = env
	return r, nil
}

// Close releases the Lua state.
func (r *Repl) Close() { r.s.close() }

// Vars returns the current snapshot (not a copy: do not modify it).
func (r *Repl) Vars() map[string]whenlua.Value { return r.cur }

// Eval runs one input chunk, as the Lua 5.3 REPL does: first as
// "return <chunk>", printing the values it returns (tab-separated) to Out,
// then, when that does not compile, as a statement. incomplete is true when
// the chunk ends too early (an unfinished block, call or expression): the
// caller reads another line and calls Eval with both; err is then the
// syntax error to report if no more input comes. Other errors are a
// *LoadError (syntax) or a *CallError (raised), positioned as "stdin:LINE".
func (r *Repl) Eval(chunk string) (incomplete bool, err error) {
	fn, err := r.compile("return " + chunk)
	var refused *limitError
	if errors.As(err, &refused) { // an expression past the source limits
		return false, syntaxError(ReplChunkName, err, 0)
	}
	if err != nil {
		fn, err = r.compile(chunk)
		if err != nil {
			var pe *parse.Error
			if errors.As(err, &pe) && pe.Pos.Line == parse.EOF && pe.Message != "unterminated string" {
				return true, syntaxError(ReplChunkName, err, 0)
			}
			return false, syntaxError(ReplChunkName, err, 0)
		}
	}
	rets, err := r.call(fn)
	if err != nil {
		return false, err
	}
	if len(rets) > 0 {
		parts := make([]string, len(rets))
		for i, v := range rets {
			parts[i] = r.format(v, 0, true)
		}
		fmt.Fprintln(r.opts.Out, strings.Join(parts, "\t"))
	}
	return false, nil
}

func (r *Repl) compile(src string) (*lua.LFunction, error) {
	proto, _, err := compileChunk(context.Background(), ReplChunkName, []byte(src))
	if err != nil {
		return nil, err
	}
	fn := r.s.L.NewFunctionFromProto(proto)
	fn.Env = r.env
	return fn, nil
}

// call runs fn under the time limit as a condition: the helpers compare the
// snapshot with the previous one.
func (r *Repl) call(fn *lua.LFunction) ([]lua.LValue, error) {
	f := &frame{phase: phaseCond, in: EvalInput{Evaluated: r.prev != nil, Prev: r.prev, Reloaded: r.prev == nil}}
	return r.s.call(f, fn, lua.MultRet)
}

// format renders v for the prompt: strings as they are at the top level
// and quoted inside tables; plain tables as {1, 2, k = v} (nested ones to
// depth 2); anything else as tostring does.
func (r *Repl) format(v lua.LValue, depth int, top bool) string {
	switch x := v.(type) {
	case lua.LString:
		if top {
			return string(x)
		}
		return fmt.Sprintf("%q", string(x))
	case *lua.LTable:
		if x.Metatable != lua.LNil || depth >= 2 {
			break
		}
		var parts []string
		n := x.Len()
		for i := 1; i <= n; i++ {
			parts = append(parts, r.format(x.RawGetInt(i), depth+1, false))
		}
		var keys []string
		fields := map[string]lua.LValue{}
		x.ForEach(func(k, val lua.LValue) {
			if kn, ok := k.(lua.LNumber); ok && float64(kn) == float64(int(kn)) && int(kn) >= 1 && int(kn) <= n {
				return
			}
			ks := r.format(k, depth+1, false)
			if s, ok := k.(lua.LString); ok && whenlua.ValidateName(string(s)) == nil {
				ks = string(s)
			} else {
				ks = "[" + ks + "]"
			}
			keys = append(keys, ks)
			fields[ks] = val
		})
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, k+" = "+r.format(fields[k], depth+1, false))
		}
		if len(parts) > 50 {
			parts = append(parts[:50], "...")
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return r.s.L.ToStringMeta(v).String()
}

// listVars is the snapshot as NAME=VALUE lines, sorted.
func (r *Repl) listVars() string {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(r.cur)) {
		fmt.Fprintf(&b, "%s=%s\n", n, r.cur[n].LineString())
	}
	return b.String()
}

// assign builds test, set and whisper: f(name, value) or f{name = value,
// ...}. test prints the jobs that would run, one per line, and set those
// it triggered ("(none)" when none); set and whisper then take a new
// snapshot, keeping the previous one.
func (r *Repl) assign(fname string, mode whenlua.Mode) lua.LGFunction {
	return func(L *lua.LState) int {
		as, err := lualib.ArgAssignments(L, fname)
		if err == nil && len(as) == 0 {
			err = errors.New("no variable given")
		}
		if err != nil {
			L.RaiseError("%s: %v", fname, err)
		}
		res, err := r.opts.Backend.Set(mode, as)
		if err != nil {
			if mode != whenlua.ModeTest && r.opts.SetHint != "" {
				L.RaiseError("%s: %s", fname, r.opts.SetHint)
			}
			L.RaiseError("%s: %v", fname, err)
		}
		for _, ce := range res.CondErrors {
			fmt.Fprintf(r.opts.Out, "condition error: %s\n", ce)
		}
		if mode != whenlua.ModeWhisper {
			for _, name := range res.Triggered {
				fmt.Fprintln(r.opts.Out, name)
			}
			if len(res.Triggered) == 0 {
				fmt.Fprintln(r.opts.Out, "(none)")
			}
		}
		if mode != whenlua.ModeTest {
			vs, err := r.opts.Backend.Vars()
			if err != nil {
				L.RaiseError("%s: read the variables: %v", fname, err)
			}
			r.cur = vs
		}
		return 0
	}
}

// refresh takes a new snapshot; the current one becomes the previous one.
func (r *Repl) refresh(L *lua.LState) int {
	vs, err := r.opts.Backend.Vars()
	if err != nil {
		L.RaiseError("refresh: %v", err)
	}
	r.prev, r.cur = r.cur, vs
	return 0
}

// jobs prints the loaded jobs as `whenlua names` does, without the zone:
// name, kind, condition, period or cron expression, file:line.
func (r *Repl) jobs(L *lua.LState) int {
	infos, err := r.opts.Backend.Names()
	if err != nil {
		L.RaiseError("jobs: %v", err)
	}
	for _, j := range infos {
		fmt.Fprintf(r.opts.Out, "%s\t%s\t%s\t%s:%d\n", j.Name, j.Kind, strings.Join(strings.Fields(j.Spec()), " "), j.File, j.Line)
	}
	return 0
}

// why prints a job's last evaluations as `whenlua why` does.
func (r *Repl) why(L *lua.LState) int {
	rep, err := r.opts.Backend.Why(L.CheckString(1))
	if err != nil {
		L.RaiseError("why: %v", err)
	}
	for _, line := range rep.Lines() {
		fmt.Fprintln(r.opts.Out, line)
	}
	return 0
}

// ReplHelp is what help() prints.
const ReplHelp = `An expression prints its value; a statement runs. Bare names are variables
of the snapshot (nil when unset), as in a string condition.
  x, vars.x           a variable of the snapshot
  vars() or vars      every variable, NAME=VALUE
  refresh()           take a new snapshot; the old one becomes the previous one
  changes("x") prev("x") increases("x") decreases("x") reloaded()
                      the condition helpers, against the previous snapshot
                      (none before the first refresh)
  test{x = 1, ...}    print the jobs that would run if these were set
  set{x = 1, ...}     set variables (only with --file: changes the local ones)
  whisper{x = 1}      the same without evaluating anything (only with --file)
  jobs()              every loaded job
  why("JOB")          the job's last evaluations, as whenlua why prints them
  tonumber tostring string math print
                      as in Lua; any other global is _G.name (_G.pairs)
`

func (r *Repl) help(L *lua.LState) int {
	fmt.Fprint(r.opts.Out, ReplHelp)
	return 0
}
