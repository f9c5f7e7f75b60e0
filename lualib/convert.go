package lualib

// This file is where values cross between Go and Lua, one function for each
// direction and shape: a variable's value, the arguments of set, the tables
// and objects the daemon hands to pre and post functions, and the arguments
// and option fields job files give, read with their error messages.
// Everything here runs on the goroutine that owns the state.

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/whenlua/whenlua"
)

// ToLua converts a variable's value to Lua: ints and floats become numbers
// (ints beyond ±2^53 lose precision, as Lua 5.1 numbers are float64),
// strings strings, bools booleans, and an unset value nil.
func ToLua(v whenlua.Value) lua.LValue {
	switch v.T {
	case whenlua.TypeString:
		return lua.LString(v.S)
	case whenlua.TypeInt:
		return lua.LNumber(float64(v.I))
	case whenlua.TypeFloat:
		return lua.LNumber(v.F)
	case whenlua.TypeBool:
		return lua.LBool(v.B)
	}
	return lua.LNil
}

// FromLua converts a Lua value to a variable's value, inferring the type as
// SPEC §5 says: an integral number in int64's range becomes an int, any other
// number a float, a string a string, a boolean a bool, nil unset. Tables,
// functions and the other Lua types are an error.
func FromLua(lv lua.LValue) (whenlua.Value, error) {
	switch x := lv.(type) {
	case *lua.LNilType:
		return whenlua.Nil, nil
	case lua.LBool:
		return whenlua.Bool(bool(x)), nil
	case lua.LString:
		return whenlua.String(string(x)), nil
	case lua.LNumber:
		f := float64(x)
		// 2^63 is the first float past int64; -2^63 is still an int64.
		if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
			return whenlua.Int(int64(f)), nil
		}
		return whenlua.Float(f), nil
	}
	return whenlua.Nil, fmt.Errorf("%w: a %s cannot be stored in a variable (want a number, string, boolean or nil)",
		whenlua.ErrInvalid, lv.Type())
}

// ValuesTable converts variables to a Lua table of name = value, filled in
// name order so that the table is the same for the same variables.
func ValuesTable(L *lua.LState, vs map[string]whenlua.Value) *lua.LTable {
	names := make([]string, 0, len(vs))
	for n := range vs {
		names = append(names, n)
	}
	sort.Strings(names)
	t := L.CreateTable(0, len(vs))
	for _, n := range names {
		t.RawSetString(n, ToLua(vs[n]))
	}
	return t
}

// ArgAssignments reads the arguments of fname(name, value) or
// fname{name = value, ...} (set, whisper, and the REPL's test) as
// assignments sorted by name, checked by whenlua.SetRequest.Validate: a
// call is a request entering the daemon. No assignment at all ({}) gives
// none and no error; the caller says what that means. Errors do not
// name fname: the caller prefixes it.
func ArgAssignments(L *lua.LState, fname string) ([]whenlua.Assignment, error) {
	usage := func() error {
		return fmt.Errorf("want %s(name, value) or %s{name = value, ...}", fname, fname)
	}
	var as []whenlua.Assignment
	switch first := L.Get(1).(type) {
	case *lua.LTable:
		if L.GetTop() > 1 {
			return nil, usage()
		}
		err := Fields(first, func(k, v lua.LValue) error {
			ks, ok := k.(lua.LString)
			if !ok {
				return fmt.Errorf("variable names are strings, not %s %s", k.Type(), k.String())
			}
			val, err := FromLua(v)
			if err != nil {
				return fmt.Errorf("%s: %v", ks, err)
			}
			as = append(as, whenlua.Assignment{Name: string(ks), Value: val})
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Slice(as, func(i, j int) bool { return as[i].Name < as[j].Name })
	case lua.LString:
		if L.GetTop() > 2 {
			return nil, usage()
		}
		val, err := FromLua(L.Get(2))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", first, err)
		}
		as = []whenlua.Assignment{{Name: string(first), Value: val}}
	default:
		return nil, fmt.Errorf("%v, not a %s", usage(), first.Type())
	}
	if len(as) == 0 {
		return nil, nil
	}
	if err := (whenlua.SetRequest{Assignments: as}).Validate(); err != nil {
		return nil, err
	}
	return as, nil
}

// PreInfoTable is the table a pre function is given: { job_name, serial,
// variables = {...}, running = { {job_name, serial, pid, start_time}, ... } },
// times in Unix seconds.
func PreInfoTable(L *lua.LState, job string, serial uint64, vars map[string]whenlua.Value, running []whenlua.Run) *lua.LTable {
	t := L.CreateTable(0, 4)
	t.RawSetString("job_name", lua.LString(job))
	t.RawSetString("serial", lua.LNumber(serial))
	t.RawSetString("variables", ValuesTable(L, vars))
	rt := L.CreateTable(len(running), 0)
	for _, r := range running {
		e := L.CreateTable(0, 4)
		e.RawSetString("job_name", lua.LString(r.Job))
		e.RawSetString("serial", lua.LNumber(r.Serial))
		e.RawSetString("pid", lua.LNumber(r.PID))
		e.RawSetString("start_time", lua.LNumber(UnixSeconds(r.Start)))
		rt.Append(e)
	}
	t.RawSetString("running", rt)
	return t
}

// Result is what a post function gets: the daemon's record of one run.
// The binding hands it to Lua as a read-only gopher-luar userdata: the
// fields by their tag names, and r:output(), the run's captured output as
// the daemon stored it (its head and tail when it was long). Lua cannot
// make one, so a function given a Result (mailto) reads the daemon's own
// record of a run, never a path or text a job file chose.
type Result struct {
	JobName    string     `luar:"job_name"`
	Serial     uint64     `luar:"serial"`
	Code       int        `luar:"code"`
	Signal     lua.LValue `luar:"signal"` // nil when none
	Error      lua.LValue `luar:"error"`  // nil when none
	Tmpdir     string     `luar:"tmpdir"`
	StartTime  float64    `luar:"start_time"`
	EndTime    float64    `luar:"end_time"`
	Duration   float64    `luar:"duration"`
	OutputSize int64      `luar:"output_size"` // bytes the job wrote in all
	// Attempt is the attempt's number (1 without the retry option); Final
	// is false when a failed attempt is to be retried.
	Attempt int  `luar:"attempt"`
	Final   bool `luar:"final"`
	// Node is the cluster node that ran it (nil on one daemon): tmpdir is
	// on that node.
	Node lua.LValue `luar:"node"`

	output []byte
}

// NewResult makes the Result of run r, whose directory is tmpdir.
func NewResult(r whenlua.Run, tmpdir string) Result {
	res := Result{
		JobName:    r.Job,
		Serial:     r.Serial,
		Code:       r.Code,
		Signal:     lua.LNil,
		Error:      lua.LNil,
		Tmpdir:     tmpdir,
		StartTime:  UnixSeconds(r.Start),
		EndTime:    UnixSeconds(r.End),
		Duration:   r.Duration().Seconds(),
		OutputSize: r.OutputSize,
		Attempt:    max(r.Attempt, 1),
		Final:      r.RetryAt.IsZero(),
		Node:       lua.LNil,
		output:     r.Output,
	}
	if r.Node != "" {
		res.Node = lua.LString(r.Node)
	}
	if r.Signal != "" {
		res.Signal = lua.LString(r.Signal)
	}
	if r.Error != "" {
		res.Error = lua.LString(r.Error)
	}
	return res
}

// Output is r:output() in Lua: the run's output as stored.
func (r Result) Output() string { return string(r.output) }

// ResultOf returns the Result that v holds, and false when v is anything
// else (a table made in Lua, say).
func ResultOf(v lua.LValue) (Result, bool) { return userdataOf[Result](v) }

// Silence is what an on_silence hook gets: the daemon's record of a job
// with the expect option that went without a successful run for longer
// than that. Like Result it reaches Lua as a read-only gopher-luar
// userdata, so mailto can tell the daemon's own record from a table made
// in Lua. Times are Unix seconds, Expect is in seconds.
type Silence struct {
	JobName string `luar:"job_name"`
	// Expect is the job's expect option, in seconds.
	Expect float64 `luar:"expect"`
	// LastSuccess is when the job's last successful run ended; nil when
	// none is known.
	LastSuccess lua.LValue `luar:"last_success"`
	// Since is when the window that ran out began: the last success, or
	// when the daemon began watching the job, whichever is later.
	Since float64 `luar:"since"`
	// SilentSince is when the alarm was raised (Since + Expect, or later
	// when the daemon noticed late).
	SilentSince float64 `luar:"silent_since"`
}

// NewSilence makes the Silence of job with the option expect, whose last
// success ended at last (zero: none known), whose window began at since
// and whose alarm was raised at at.
func NewSilence(job string, expect time.Duration, last, since, at time.Time) Silence {
	s := Silence{JobName: job, Expect: expect.Seconds(), LastSuccess: lua.LNil, Since: UnixSeconds(since), SilentSince: UnixSeconds(at)}
	if !last.IsZero() {
		s.LastSuccess = lua.LNumber(UnixSeconds(last))
	}
	return s
}

// SilenceOf returns the Silence that v holds, and false when v is
// anything else.
func SilenceOf(v lua.LValue) (Silence, bool) { return userdataOf[Silence](v) }

// userdataOf returns the T that v, a userdata, holds, and false when v is
// anything else.
func userdataOf[T any](v lua.LValue) (T, bool) {
	if ud, ok := v.(*lua.LUserData); ok {
		t, ok := ud.Value.(T)
		return t, ok
	}
	var zero T
	return zero, false
}

// UnixSeconds is t as Unix seconds with a fraction, as Lua sees times; the
// zero time is 0.
func UnixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// FromUnixSeconds is UnixSeconds the other way: 0 is the zero time.
func FromUnixSeconds(f float64) time.Time {
	if f == 0 {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// Fields calls fn with each key and value of t, in ForEach's order, until
// fn returns an error; it returns that error. Option tables and set{...}
// are read with it, so each reports its first bad field.
func Fields(t *lua.LTable, fn func(k, v lua.LValue) error) error {
	var err error
	t.ForEach(func(k, v lua.LValue) {
		if err == nil {
			err = fn(k, v)
		}
	})
	return err
}

// typed returns v as a T, or the error "what must be want, not a TYPE".
func typed[T lua.LValue](v lua.LValue, what, want string) (T, error) {
	x, ok := v.(T)
	if !ok {
		return x, fmt.Errorf("%s must be %s, not a %s", what, want, v.Type())
	}
	return x, nil
}

// AsString reads an argument or option field that must be a string; what
// names it in the error ("option name", "every: the period"), want says
// what it should be ("a string", "a zone name such as ...").
func AsString(v lua.LValue, what, want string) (string, error) {
	s, err := typed[lua.LString](v, what, want)
	return string(s), err
}

// AsBool reads an argument or option field that must be a boolean (false
// on error).
func AsBool(v lua.LValue, what, want string) (bool, error) {
	b, err := typed[lua.LBool](v, what, want)
	return bool(b), err
}

// AsFunction reads an argument or option field that must be a function.
func AsFunction(v lua.LValue, what string) (*lua.LFunction, error) {
	return typed[*lua.LFunction](v, what, "a function")
}

// AsTable reads an argument or option field that must be a table.
func AsTable(v lua.LValue, what, want string) (*lua.LTable, error) {
	return typed[*lua.LTable](v, what, want)
}

// OptDuration reads option key: a duration ("90s", "30m", "1h30m") or a
// number of seconds, positive.
func OptDuration(key string, v lua.LValue) (time.Duration, error) {
	var d time.Duration
	switch v := v.(type) {
	case lua.LString:
		var err error
		d, err = time.ParseDuration(strings.TrimSpace(string(v)))
		if err != nil {
			return 0, fmt.Errorf("option %s %q is not a duration (want e.g. \"90s\", \"30m\", \"2h\")", key, string(v))
		}
	case lua.LNumber:
		secs := float64(v)
		if !(secs > 0) {
			return 0, fmt.Errorf("option %s must be positive, not %v", key, v)
		}
		if secs >= float64(math.MaxInt64)/float64(time.Second) {
			return 0, fmt.Errorf("option %s of %v seconds is too long (at most %v)", key, v, time.Duration(math.MaxInt64).Truncate(time.Second))
		}
		d = time.Duration(secs * float64(time.Second))
	default:
		return 0, fmt.Errorf("option %s must be a duration such as \"30m\", not a %s", key, v.Type())
	}
	if d <= 0 {
		return 0, fmt.Errorf("option %s must be positive, not %v", key, d)
	}
	return d, nil
}
