package luaapi

import (
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/lualib"
)

// phase is what the state is running now; it decides what the library
// allows (set in a condition is an error) and the origin of a set.
type phase int

const (
	phaseNone phase = iota
	phaseLoad       // top-level code
	phaseHook       // on_load, on_unload
	phaseCond
	phasePre
	phasePost
	phaseSilence // on_silence
)

// frame is the context of one call into the state. Calls may nest (a Host
// callback may call back into the same file); each call saves and restores
// the frame around it.
type frame struct {
	phase phase
	job   *Job
	in    EvalInput // phaseCond only
	reads []string
	// askedReloaded: the condition called reloaded().
	askedReloaded bool
	seen          map[string]bool
}

func (f *frame) read(name string) {
	if f.seen == nil {
		// few names: a linear scan beats building a map per evaluation
		for _, r := range f.reads {
			if r == name {
				return
			}
		}
		f.reads = append(f.reads, name)
		if len(f.reads) > 16 {
			f.seen = map[string]bool{}
			for _, r := range f.reads {
				f.seen[r] = true
			}
		}
		return
	}
	if !f.seen[name] {
		f.seen[name] = true
		f.reads = append(f.reads, name)
	}
}

// state is one sandboxed Lua state: one loaded version of one job file. It
// is owned by one goroutine at a time, the caller's, and implements
// lualib.Env for the library opened in it.
type state struct {
	L        *lua.LState
	path     string
	src      []byte
	compiled *Compiled
	opts     Options
	cur      *frame
	watch    *watch // the limits of the call into Lua running, if one is
	file     *File
	jobs     []*Job
	names    map[string]int // explicit job names -> line
	requires []string
	onLoad   []*lua.LFunction
	onUnload []*lua.LFunction
	condEnv  map[string]lua.LValue // the exempt names of string conditions
	// condEnvTable is the environment of the file's string conditions.
	condEnvTable *lua.LTable
	varIndex     *lua.LFunction // __index of string condition environments
	ast          *fileAST
}

// DefaultTimeout is the time limit of a call into Lua when Options.Timeout is 0.
const DefaultTimeout = 2 * time.Second

func newState(path string, src []byte, c *Compiled, opts Options) (*state, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MemoryLimit == 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	if opts.Host == nil {
		opts.Host = newMemHost()
	}
	s := &state{path: path, src: src, compiled: c, opts: opts, names: map[string]int{}, cur: &frame{}}
	s.L = s.newLState()
	L := s.L
	if err := lualib.Open(L, s); err != nil {
		L.Close()
		return nil, err
	}
	helpers := map[string]lua.LGFunction{
		"changes":   s.changes,
		"increases": s.compare(func(prev, cur float64) bool { return prev < cur }),
		"decreases": s.compare(func(prev, cur float64) bool { return prev > cur }),
		"prev":      s.prev,
		"reloaded":  s.reloaded,
	}
	s.condEnv = map[string]lua.LValue{}
	for name, fn := range helpers {
		f := L.NewFunction(fn)
		L.SetGlobal(name, f)
		s.condEnv[name] = f
	}
	for _, name := range []string{"vars", "tonumber", "tostring", "string", "math", concatName} {
		s.condEnv[name] = L.GetGlobal(name)
	}
	s.varIndex = L.NewFunction(lualib.VarIndex(s.Get))
	L.SetGlobal("when", L.NewFunction(s.declare(When)))
	L.SetGlobal("every", L.NewFunction(s.declare(Every)))
	L.SetGlobal("cron", L.NewFunction(s.declare(Cron)))
	return s, nil
}

// call runs fn(args...) under the time limit in frame f and returns nret
// results (all of them with lua.MultRet). Errors are *CallError.
func (s *state) call(f *frame, fn *lua.LFunction, nret int, args ...lua.LValue) ([]lua.LValue, error) {
	if s.L == nil {
		return nil, ErrClosed
	}
	L := s.L
	saved, prevCtx := s.cur, L.Context()
	s.cur = f
	outer := s.watch
	if outer != nil {
		outer.pause()
	}
	// A call nested in a load is part of it.
	w := startWatch(s.opts.Timeout, s.opts.MemoryLimit, f.phase == phaseLoad || outer != nil && outer.load)
	s.watch = w
	L.SetContext(w.ctx)
	top := L.GetTop()
	err := L.CallByParam(lua.P{Fn: fn, NRet: nret, Protect: true}, args...)
	limit := w.stop()
	s.watch = outer
	if outer != nil {
		outer.resume()
	}
	if prevCtx != nil {
		L.SetContext(prevCtx)
	} else {
		L.RemoveContext()
	}
	s.cur = saved
	if err != nil {
		L.SetTop(top)
		return nil, s.callError(err, limit)
	}
	rets := make([]lua.LValue, L.GetTop()-top)
	for i := range rets {
		rets[i] = L.Get(top + 1 + i)
	}
	L.SetTop(top)
	return rets, nil
}

// callError turns an error raised by a call into a *CallError; limit is
// the limit that ended the call, if one did.
func (s *state) callError(err error, limit error) *CallError {
	file, line, msg := splitPos(s.path, errorText(err))
	if file == "" {
		file = s.path
	}
	ce := &CallError{Path: file, Line: line, Msg: requireMessage(msg)}
	switch limit {
	case errTimeLimit:
		ce.Timeout = true
		ce.Msg = fmt.Sprintf("time limit of %v exceeded (a runaway loop?)", s.opts.Timeout)
	case errMemoryLimit:
		ce.Memory = true
		ce.Msg = fmt.Sprintf("memory limit of %s exceeded (a runaway allocation?)", mib(s.opts.MemoryLimit))
	}
	return ce
}

func (s *state) close() {
	if s.L != nil {
		s.L.Close()
		s.L = nil
	}
}

// Get implements lualib.Env: the current value, recorded as read inside a condition.
func (s *state) Get(name string) whenlua.Value {
	if s.cur.phase == phaseCond {
		s.cur.read(name)
	}
	return s.opts.Host.Get(name)
}

// Set implements lualib.Env, choosing the origin from the current phase.
func (s *state) Set(as []whenlua.Assignment, trigger bool) error {
	var origin string
	switch s.cur.phase {
	case phaseLoad, phaseHook:
		origin = whenlua.OriginLoad(s.path)
	case phasePre:
		origin = whenlua.OriginPre(s.cur.job.Name)
	case phasePost:
		origin = whenlua.OriginPost(s.cur.job.Name)
	case phaseSilence:
		origin = whenlua.OriginSilence(s.cur.job.Name)
	case phaseCond:
		return errors.New("variables cannot be set inside a condition")
	default:
		return errors.New("variables can be set only while the file loads, in on_load/on_unload, pre, post or on_silence")
	}
	return s.opts.Host.Set(origin, as, trigger)
}

// MaxLogLen bounds one message of log or print; the rest is cut, so that
// a loop of long messages cannot fill the daemon's log at memory speed.
const MaxLogLen = 4 << 10

// Log implements lualib.Env.
func (s *state) Log(msg string) { s.opts.Host.Log(s.path, clip(msg, MaxLogLen)) }

// SendMail implements lualib.Env.
func (s *state) SendMail(to string, msg []byte) { s.opts.Host.SendMail(to, msg) }

// OnLoad implements lualib.Env.
func (s *state) OnLoad(fn *lua.LFunction) error {
	if s.cur.phase != phaseLoad {
		return errors.New("hooks are registered at the top level of a job file, while it loads")
	}
	s.onLoad = append(s.onLoad, fn)
	return nil
}

// OnUnload implements lualib.Env.
func (s *state) OnUnload(fn *lua.LFunction) error {
	if s.cur.phase != phaseLoad {
		return errors.New("hooks are registered at the top level of a job file, while it loads")
	}
	s.onUnload = append(s.onUnload, fn)
	return nil
}

// condInput returns the evaluation input, raising when not in a condition.
func (s *state) condInput(L *lua.LState, fname string) *EvalInput {
	if s.cur.phase != phaseCond {
		L.RaiseError("%s is only meaningful inside a condition", fname)
	}
	return &s.cur.in
}

// helperArg checks a helper's name argument and records the read.
func (s *state) helperArg(L *lua.LState, fname string) (name string, in *EvalInput) {
	in = s.condInput(L, fname)
	name = L.CheckString(1)
	if err := whenlua.ValidateName(name); err != nil {
		L.ArgError(1, err.Error())
	}
	return name, in
}

func prevValue(in *EvalInput, name string) whenlua.Value {
	if !in.Evaluated {
		return whenlua.Nil
	}
	return in.Prev[name]
}

// prev(x): x at the previous evaluation, nil before the first.
func (s *state) prev(L *lua.LState) int {
	name, in := s.helperArg(L, "prev")
	s.cur.read(name)
	L.Push(lualib.ToLua(prevValue(in, name)))
	return 1
}

// changes(x): x differs from prev(x) in type or value.
func (s *state) changes(L *lua.LState) int {
	name, in := s.helperArg(L, "changes")
	L.Push(lua.LBool(!s.Get(name).Equal(prevValue(in, name))))
	return 1
}

// compare builds increases/decreases: false unless both sides are numbers.
func (s *state) compare(ok func(prev, cur float64) bool) lua.LGFunction {
	return func(L *lua.LState) int {
		name, in := s.helperArg(L, "increases/decreases")
		cur, ok1 := s.Get(name).Number()
		prev, ok2 := prevValue(in, name).Number()
		L.Push(lua.LBool(ok1 && ok2 && ok(prev, cur)))
		return 1
	}
}

// reloaded(): true in the evaluations that follow a (re)load or a start.
func (s *state) reloaded(L *lua.LState) int {
	in := s.condInput(L, "reloaded")
	s.cur.askedReloaded = true
	L.Push(lua.LBool(in.Reloaded))
	return 1
}
