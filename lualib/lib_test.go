package lualib

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"go.uber.org/goleak"

	"github.com/whenlua/whenlua"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeEnv records what the library asks.
type fakeEnv struct {
	vars     map[string]whenlua.Value
	sets     [][]whenlua.Assignment
	triggers []bool
	logs     []string
	mails    map[string]string
	setErr   error
	hooks    int
}

func (e *fakeEnv) Get(name string) whenlua.Value { return e.vars[name] }
func (e *fakeEnv) Set(as []whenlua.Assignment, trigger bool) error {
	if e.setErr != nil {
		return e.setErr
	}
	e.sets = append(e.sets, as)
	e.triggers = append(e.triggers, trigger)
	return nil
}
func (e *fakeEnv) Log(msg string) { e.logs = append(e.logs, msg) }
func (e *fakeEnv) SendMail(to string, msg []byte) {
	if e.mails == nil {
		e.mails = map[string]string{}
	}
	e.mails[to] = string(msg)
}
func (e *fakeEnv) OnLoad(*lua.LFunction) error   { e.hooks++; return nil }
func (e *fakeEnv) OnUnload(*lua.LFunction) error { e.hooks++; return nil }

func newLib(t *testing.T, env *fakeEnv) *lua.LState {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, open := range []lua.LGFunction{lua.OpenBase, lua.OpenString, lua.OpenMath, lua.OpenTable} {
		L.Push(L.NewFunction(open))
		L.Call(0, 0)
	}
	if err := Open(L, env); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(L.Close)
	return L
}

func run(L *lua.LState, src string) error { return L.DoString(src) }

func TestSetAndWhisper(t *testing.T) {
	a := func(name string, v whenlua.Value) whenlua.Assignment { return whenlua.Assignment{Name: name, Value: v} }
	cases := []struct {
		name    string
		src     string
		want    []whenlua.Assignment
		trigger bool
	}{
		{"set(name, value) sets one variable", `set("x", 5)`, []whenlua.Assignment{a("x", whenlua.Int(5))}, true},
		{"set of a fraction stores a float", `set("x", 0.25)`, []whenlua.Assignment{a("x", whenlua.Float(0.25))}, true},
		{"set(name) unsets", `set("x")`, []whenlua.Assignment{a("x", whenlua.Nil)}, true},
		{"set(name, nil) unsets", `set("x", nil)`, []whenlua.Assignment{a("x", whenlua.Nil)}, true},
		{"set{...} sets several, sorted by name", `set{b = "s", a = true}`, []whenlua.Assignment{a("a", whenlua.Bool(true)), a("b", whenlua.String("s"))}, true},
		{"whisper does not trigger", `whisper("x", false)`, []whenlua.Assignment{a("x", whenlua.Bool(false))}, false},
		{"whisper{...} does not trigger", `whisper{x = 1}`, []whenlua.Assignment{a("x", whenlua.Int(1))}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := &fakeEnv{}
			L := newLib(t, env)
			if err := run(L, tc.src); err != nil {
				t.Fatal(err)
			}
			if len(env.sets) != 1 || !reflect.DeepEqual(env.sets[0], tc.want) || env.triggers[0] != tc.trigger {
				t.Fatalf("sets = %+v %v, want %+v %v", env.sets, env.triggers, tc.want, tc.trigger)
			}
		})
	}
	bad := []struct{ name, src, want string }{
		{"a bad name is refused", `set("1x", 1)`, `set: invalid: variable name "1x"`},
		{"a reserved name is refused", `set("JOBSERIAL", 1)`, "reserved"},
		{"a table value is refused", `set("x", {})`, "set: x: invalid: a table cannot be stored"},
		{"a non-string key is refused", `set{[1] = 2}`, "variable names are strings"},
		{"a value past the limit is refused", `set("x", string.rep("a", 70000))`, "more than 65536"},
		{"a number is not a name", `whisper(5, 1)`, "whisper: want whisper(name, value)"},
		{"extra arguments are refused", `set("x", 1, 2)`, "want set(name, value)"},
		{"the env's refusal is raised", `set("x", 1)`, "set: disk full"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			env := &fakeEnv{}
			if tc.want == "set: disk full" {
				env.setErr = errors.New("disk full")
			}
			L := newLib(t, env)
			err := run(L, tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
			if len(env.sets) != 0 {
				t.Fatalf("stored %+v", env.sets)
			}
		})
	}
}

func TestGetAndVars(t *testing.T) {
	env := &fakeEnv{vars: map[string]whenlua.Value{"n": whenlua.Int(3), "s": whenlua.String("x")}}
	L := newLib(t, env)
	cases := []struct{ name, src string }{
		{"get returns a number", `assert(get("n") == 3)`},
		{"get of an unset variable is nil", `assert(get("nope") == nil)`},
		{"vars reads values", `assert(vars.n == 3 and vars["s"] == "x" and vars.nope == nil)`},
		{"vars ignores keys that are not names", `assert(vars[1] == nil and vars["a b"] == nil)`},
		{"vars cannot be assigned", `assert(not pcall(function() vars.n = 4 end))`},
		{"vars' metatable is protected", `assert(getmetatable(vars) == "vars is read-only")`},
		{"get refuses a bad name", `assert(not pcall(get, "a b"))`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(L, tc.src); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLog(t *testing.T) {
	env := &fakeEnv{}
	L := newLib(t, env)
	if err := run(L, `log("disk at %d%%", 93) log("50% done") log("%s and %s", "a", "b")`); err != nil {
		t.Fatal(err)
	}
	if want := []string{"disk at 93%", "50% done", "a and b"}; !reflect.DeepEqual(env.logs, want) {
		t.Fatalf("logs = %q, want %q", env.logs, want)
	}
}

func TestHooksAreHandedToTheEnv(t *testing.T) {
	env := &fakeEnv{}
	L := newLib(t, env)
	if err := run(L, `on_load(function() end) on_unload(function() end)`); err != nil || env.hooks != 2 {
		t.Fatalf("err %v, hooks %d", err, env.hooks)
	}
	if err := run(L, `on_load("x")`); err == nil {
		t.Fatal("on_load accepted a string")
	}
}

func TestMaxAndOne(t *testing.T) {
	L := newLib(t, &fakeEnv{})
	src := `
local info = {job_name = "j", running = {{job_name = "j"}, {job_name = "k"}, {job_name = "j"}}}
assert(one()({job_name = "j", running = {}}) == true, "one with nothing running")
assert(one()(info) == false, "one with j running")
assert(max(2)(info) == false, "max(2) with two j running")
assert(max(3)(info) == true, "max(3) with two j running")
assert(not pcall(max, 1.5) and not pcall(max, "2") and not pcall(max, 0))`
	if err := run(L, src); err != nil {
		t.Fatal(err)
	}
}

func TestMailto(t *testing.T) {
	out := []byte("line 1\nline 2\n")
	big := []byte(strings.Repeat("x", MailOutputCap+100))
	result := func(code int, signal string, output []byte) whenlua.Run {
		start := time.Unix(1700000000, 0)
		return whenlua.Run{Job: "backup", Serial: 12, Code: code, Signal: signal, Output: output, OutputSize: int64(len(output)),
			Start: start, End: start.Add(3500 * time.Millisecond)}
	}
	timedOut := result(-1, "terminated", out)
	timedOut.Error = "timed out after 1s"
	cases := []struct {
		name   string
		mailto string
		result whenlua.Run
		sent   bool
		want   []string
	}{
		{"a success is mailed with its output", `mailto("me@example.com")`, result(0, "", out), true,
			[]string{"To: me@example.com\n", "Subject: whenlua: job backup #12 exited with status 0\n", "Duration: 3.5s\n", "\n\nline 1\nline 2\n"}},
		{"only_on_failure skips a success", `mailto("me@example.com", {only_on_failure = true})`, result(0, "", out), false, nil},
		{"only_on_failure mails a failure", `mailto("me@example.com", {only_on_failure = true})`, result(2, "", out), true,
			[]string{"Subject: whenlua: job backup #12 exited with status 2\n"}},
		{"only_on_failure mails a killed run", `mailto("me@example.com", {only_on_failure = true})`, result(-1, "killed", out), true,
			[]string{"Subject: whenlua: job backup #12 killed by signal killed\n"}},
		{"a timed-out run says so", `mailto("me@example.com")`, timedOut, true,
			[]string{"Subject: whenlua: job backup #12 timed out after 1s, killed by signal terminated\n"}},
		{"from sets the sender", `mailto("me@example.com", {from = "cron@host"})`, result(0, "", out), true,
			[]string{"From: cron@host\n", "Started:  2023-11-14T22:13:20Z\n"}},
		{"a long output is capped", `mailto("me@example.com")`, result(0, "", big), true,
			[]string{"[100 more bytes of output left out]\n"}},
		{"a run without output says so", `mailto("me@example.com")`, result(0, "", nil), true,
			[]string{"\n\n(no output)\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := &fakeEnv{}
			L := newLib(t, env)
			r := L.NewUserData()
			r.Value = NewResult(tc.result, "/tmp/run")
			L.SetGlobal("r", r)
			if err := run(L, "local post = "+tc.mailto+"\npost(r)"); err != nil {
				t.Fatal(err)
			}
			msg, sent := env.mails["me@example.com"]
			if sent != tc.sent {
				t.Fatalf("sent = %v, want %v", sent, tc.sent)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
			if sent && len(msg) > MailOutputCap+2000 {
				t.Errorf("message of %d bytes is not capped", len(msg))
			}
		})
	}
	bad := []struct{ name, src, want string }{
		{"an address with a line break is refused", `mailto("a@b\nBcc: x@y")`, "line break"},
		{"an empty address is refused", `mailto("")`, "empty mail address"},
		{"an unknown option is refused", `mailto("a@b", {cc = "x"})`, "unknown option cc"},
		{"only_on_failure must be a boolean", `mailto("a@b", {only_on_failure = 1})`, "must be a boolean"},
		{"a table made in Lua is not a result", `mailto("a@b")({job_name = "x", code = 0})`, "want the result a post function is given"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			L := newLib(t, &fakeEnv{})
			if err := run(L, tc.src); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}
