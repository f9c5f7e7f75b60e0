package luaapi

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// fuzzLimit is the Lua time limit of FuzzLoadJobFile; fuzzSlack is how far
// past it a call may return (a budgeted pattern call, GC on a busy machine)
// before it counts as a hang.
const (
	fuzzLimit = 50 * time.Millisecond
	fuzzSlack = 5 * time.Second
)

// FuzzLoadJobFile compiles and loads arbitrary source as a job file, then
// calls everything it declared: on_load, each condition (twice, so the
// helpers see a previous snapshot), pre, post, on_unload, and a condition
// after Close. Nothing may panic, every error is a *LoadError or a
// *CallError, and no call outlives the time limit by more than fuzzSlack.
func FuzzLoadJobFile(f *testing.F) {
	for _, glob := range []string{"../testdata/lua/*.lua", "../testdata/lua/bad/*.lua", "../examples/*.lua"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	for _, s := range []string{
		`when("x > 1 and changes('s')", "echo $x", {name="a", pre=one(), post=function(r) set("done", r.code) end})`,
		`when(function() return increases("x") or prev("s") == nil or reloaded() end, "true", {pre=max(2), timeout="5s"})`,
		`every("10 seconds", [[ date ]], {name="tick", post=mailto("me@example.com", {only_on_failure=true})})`,
		`on_load(function() set{a=1, b="x", c=true, d=1.5} whisper("e", 2) end) on_unload(function() log("bye %d", get("a")) end)`,
		`when("vars.x == 1 and string.find(s, '(.-)%1')", "true", {pre=function(i) return #i.running < 1 end})`,
		`when("x", "true", {post=function(r) while true do end end})`,
		`local t = {} setmetatable(t, {__index=function(t, k) return t[k] end}) when(function() return t.x end, "true")`,
		`when("load >= 6", "true") when("type ~= nil", "true", {name="t"}) when(function() error({}) end, "true")`,
		"#!/usr/bin/env whenlua\nrequire('helpers') when('", // shebang, missing module, syntax error at EOF
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) { exerciseJobFile(t, src) })
}

// exerciseJobFile compiles and loads src as a job file and calls all it
// declared, failing on a panic, an error of the wrong type or a call that
// outlives its time limit by more than fuzzSlack.
func exerciseJobFile(t *testing.T, src []byte) {
	{
		host := newFakeHost(map[string]whenlua.Value{"x": whenlua.Int(2), "s": whenlua.String("abc"), "b": whenlua.Bool(true)})
		const path = "fuzz.lua"
		timed := func(what string, fn func() error) error {
			t.Helper()
			start := time.Now()
			err := fn()
			if d := time.Since(start); d > fuzzLimit+fuzzSlack {
				t.Fatalf("%s took %v with a time limit of %v", what, d, fuzzLimit)
			}
			return err
		}
		isLoadError := func(what string, err error) {
			t.Helper()
			var le *LoadError
			if !errors.As(err, &le) || le.Path != path || le.Msg == "" {
				t.Fatalf("%s: error %v (%T) is not a *LoadError of %s with a message", what, err, err, path)
			}
		}
		isCallError := func(what string, err error) {
			t.Helper()
			var ce *CallError
			if err != nil && (!errors.As(err, &ce) || ce.Msg == "") {
				t.Fatalf("%s: error %v (%T) is not a *CallError with a message", what, err, err)
			}
		}

		proto, err := Compile(path, src)
		if err != nil {
			isLoadError("Compile", err)
			return
		}
		var file *File
		err = timed("Load", func() (err error) {
			file, err = Load(path, src, proto, Options{Timeout: fuzzLimit, Host: host})
			return err
		})
		if err != nil {
			isLoadError("Load", err)
			if file != nil {
				t.Fatal("Load returned a file and an error")
			}
			return
		}
		isCallError("on_load", timed("on_load", file.CallOnLoad))
		names := map[string]bool{}
		for _, j := range file.Jobs {
			if j.Name == "" || names[j.Name] || j.File != file {
				t.Fatalf("job %q: empty or duplicate name, or not of its file", j.Name)
			}
			names[j.Name] = true
			if j.Kind == Every {
				if j.Period.N < 1 {
					t.Fatalf("every-job %s with period %+v", j.Name, j.Period)
				}
				continue
			}
			if j.Kind == Cron {
				if j.Cron == nil || j.Zone == nil {
					t.Fatalf("cron-job %s without its expression or zone", j.Name)
				}
				continue
			}
			in := EvalInput{Reloaded: true}
			for range 2 {
				isCallError("condition of "+j.Name, timed("condition of "+j.Name, func() error {
					_, _, err := j.Eval(in)
					return err
				}))
				in = EvalInput{Evaluated: true, Prev: map[string]whenlua.Value{"x": whenlua.Int(1), "s": whenlua.String("ab")}}
			}
			isCallError("pre of "+j.Name, timed("pre of "+j.Name, func() error {
				_, _, err := j.CallPre(PreInfo{Serial: 7, Vars: map[string]whenlua.Value{"x": whenlua.Int(2)},
					Running: []whenlua.Run{{Serial: 6, Job: j.Name, PID: 1, Start: time.Unix(1, 0)}}})
				return err
			}))
			isCallError("post of "+j.Name, timed("post of "+j.Name, func() error {
				return j.CallPost(whenlua.Run{Serial: 7, Job: j.Name, Code: 1, Signal: "killed", Error: "timed out",
					Start: time.Unix(1, 0), End: time.Unix(2, 0)}, "/nonexistent/run")
			}))
		}
		if err := timed("on_unload", file.CallOnUnload); err != nil {
			var ce *CallError
			if !errors.As(err, &ce) {
				t.Fatalf("on_unload: error %v (%T) holds no *CallError", err, err)
			}
		}
		file.Close()
		if !file.Closed() {
			t.Fatal("Closed is false after Close")
		}
		for _, j := range file.Jobs {
			if j.Kind == When {
				if _, _, err := j.Eval(EvalInput{}); err == nil {
					t.Fatalf("condition of %s evaluated after Close", j.Name)
				}
			}
			if _, _, err := j.CallPre(PreInfo{}); j.HasPre && !errors.Is(err, ErrClosed) {
				t.Fatalf("pre of %s after Close: %v, want ErrClosed", j.Name, err)
			}
		}
	}
}
