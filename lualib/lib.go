// Package lualib is the Lua library every job file gets: one, max, mailto,
// set, whisper, get, vars, log, on_load and on_unload (SPEC §3), and the one
// place where values cross between Go and Lua (convert.go).
//
// The library reaches the daemon only through an Env, which the binding
// (package luaapi) implements for each Lua state. Every function here runs on
// the goroutine that called into the state, which owns it for that call.
// The package owns only the compiled lib.lua, built once and read-only.
package lualib

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/whenlua/whenlua"
)

// Env is what the library needs from the state it is opened in.
type Env interface {
	// Get returns a variable's current value; inside a condition the binding
	// also records the read.
	Get(name string) whenlua.Value
	// Set stores the assignments atomically, with the origin of the current
	// context (load, pre or post of a job); trigger=false is whisper. The
	// error is raised in Lua (e.g. set inside a condition).
	Set(as []whenlua.Assignment, trigger bool) error
	// Log writes msg to the daemon log, tagged with the job file.
	Log(msg string)
	// SendMail hands a message to the mailer; it never blocks.
	SendMail(to string, msg []byte)
	// OnLoad and OnUnload register hooks; an error (e.g. outside loading) is raised.
	OnLoad(fn *lua.LFunction) error
	OnUnload(fn *lua.LFunction) error
}

//go:embed lib.lua
var libSource string

var (
	libOnce  sync.Once
	libProto *lua.FunctionProto
	libErr   error
)

// compiledLib compiles lib.lua once per process; the proto is read-only and
// shared by every state.
func compiledLib() (*lua.FunctionProto, error) {
	libOnce.Do(func() {
		chunk, err := parse.Parse(strings.NewReader(libSource), "=whenlua")
		if err != nil {
			libErr = fmt.Errorf("parse lualib: %w", err)
			return
		}
		libProto, libErr = lua.Compile(chunk, "=whenlua")
	})
	return libProto, libErr
}

// Open installs the library as globals of L. L must already have the base
// and string libraries open. It runs on the goroutine that owns L.
func Open(L *lua.LState, env Env) error {
	l := &lib{env: env}
	for name, fn := range map[string]lua.LGFunction{
		"set":       l.set(true),
		"whisper":   l.set(false),
		"get":       l.get,
		"log":       l.log,
		"on_load":   l.onLoad,
		"on_unload": l.onUnload,
		"mailto":    l.mailto,
	} {
		L.SetGlobal(name, L.NewFunction(fn))
	}
	L.SetGlobal("vars", NewVars(L, env.Get))
	l.format = L.GetField(L.GetGlobal("string"), "format")
	proto, err := compiledLib()
	if err != nil {
		return err
	}
	L.Push(L.NewFunctionFromProto(proto))
	if err := L.PCall(0, 0, nil); err != nil {
		return fmt.Errorf("open lualib: %w", err)
	}
	return nil
}

type lib struct {
	env    Env
	format lua.LValue // string.format as opened, for log
}

// NewVars returns the read-only table `vars`: indexing it with a variable
// name calls get, assigning to it raises an error. Other keys read as nil.
//
// VarIndex is its __index, also that of string conditions' environments.
func NewVars(L *lua.LState, get func(string) whenlua.Value) *lua.LTable {
	// Sized: NewTable would reserve room for 32+32 entries in each.
	t := L.CreateTable(0, 0)
	mt := L.CreateTable(0, 3)
	mt.RawSetString("__index", L.NewFunction(VarIndex(get)))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("vars is read-only: use set(%q, value) or whisper", lua.LVAsString(L.Get(2)))
		return 0
	}))
	mt.RawSetString("__metatable", lua.LString("vars is read-only"))
	L.SetMetatable(t, mt)
	return t
}

// set implements set(name, value), set{name=value, ...} and the same for
// whisper. The assignments of one call are stored atomically, sorted by name.
// A call is a request entering the daemon: ArgAssignments checks it as a set
// from the socket is, and it is trusted from then on.
func (l *lib) set(trigger bool) lua.LGFunction {
	fname := "set"
	if !trigger {
		fname = "whisper"
	}
	return func(L *lua.LState) int {
		as, err := ArgAssignments(L, fname)
		if err != nil {
			L.RaiseError("%s: %v", fname, err)
		}
		if len(as) == 0 {
			return 0
		}
		if err := l.env.Set(as, trigger); err != nil {
			L.RaiseError("%s: %v", fname, err)
		}
		return 0
	}
}

func (l *lib) get(L *lua.LState) int {
	name := L.CheckString(1)
	if err := whenlua.ValidateName(name); err != nil {
		L.ArgError(1, err.Error())
	}
	L.Push(ToLua(l.env.Get(name)))
	return 1
}

// log(fmt, ...) formats with string.format; log(msg) logs msg as it is, so
// a lone "50%" needs no escaping.
func (l *lib) log(L *lua.LState) int {
	top := L.GetTop()
	if top == 0 {
		L.RaiseError("log: want log(format, ...)")
	}
	var msg string
	if top == 1 {
		msg = L.ToStringMeta(L.Get(1)).String()
	} else {
		L.CheckString(1)
		L.Push(l.format)
		for i := 1; i <= top; i++ {
			L.Push(L.Get(i))
		}
		L.Call(top, 1)
		msg = L.ToStringMeta(L.Get(-1)).String()
		L.Pop(1)
	}
	l.env.Log(msg)
	return 0
}

func (l *lib) onLoad(L *lua.LState) int {
	if err := l.env.OnLoad(L.CheckFunction(1)); err != nil {
		L.RaiseError("on_load: %v", err)
	}
	return 0
}

func (l *lib) onUnload(L *lua.LState) int {
	if err := l.env.OnUnload(L.CheckFunction(1)); err != nil {
		L.RaiseError("on_unload: %v", err)
	}
	return 0
}

// VarIndex is an __index function: a variable name reads get(name), any
// other key nil.
func VarIndex(get func(string) whenlua.Value) lua.LGFunction {
	return func(L *lua.LState) int {
		k, ok := L.Get(2).(lua.LString)
		if !ok || whenlua.ValidateName(string(k)) != nil {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(ToLua(get(string(k))))
		return 1
	}
}
