package luaapi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whenlua/whenlua"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runawayCase is a file whose body runs away in one place, how to call
// that place, and the body's line.
type runawayCase struct {
	name string
	src  string
	call func(f *File) error
	line int
}

// runawayCases puts body where a file's code runs: a function condition,
// pre, post, on_load, and behind pcall in a condition.
func runawayCases(body string) []runawayCase {
	return []runawayCase{
		{"in a function condition", "when(function()\n" + body + "\nend, 't', {name = 'j'})", evalFirst, 2},
		{"in pre", "every('hour', 't', {name = 'j', pre = function()\n" + body + "\nend})",
			func(f *File) error { _, _, err := f.Jobs[0].CallPre(PreInfo{}); return err }, 2},
		{"in post", "every('hour', 't', {name = 'j', post = function()\n" + body + "\nend})",
			func(f *File) error { return f.Jobs[0].CallPost(whenlua.Run{}, "/tmp") }, 2},
		{"in on_load", "on_load(function()\n" + body + "\nend)", (*File).CallOnLoad, 2},
		{"behind pcall", "when(function()\nwhile true do pcall(function() " + body + " end) end\nend, 't', {name = 'j'})", evalFirst, 2},
	}
}

// evalFirst evaluates the condition of the file's first job.
func evalFirst(f *File) error {
	_, _, err := f.Jobs[0].Eval(EvalInput{})
	return err
}

// wantUsable fails unless f's state runs a chunk again after what stopped
// its last call.
func wantUsable(t *testing.T, f *File, after string) {
	t.Helper()
	if _, err := f.s.call(&frame{phase: phaseLoad}, f.s.L.NewFunctionFromProto(mustCompile(t, "local x = 1")), 0); err != nil {
		t.Fatalf("state unusable after %s: %v", after, err)
	}
}

// fakeHost records what the library asks of the daemon: check's memHost,
// with a record of sets, logs and mail, a set error to inject and runs to
// report as running.
type fakeHost struct {
	memHost
	sets    []setCall
	logs    []string
	mails   []mail
	running []whenlua.Run
	setErr  error
	onSet   func() // called after a set is stored, for reentrancy tests
}

type setCall struct {
	Origin  string
	As      []whenlua.Assignment
	Trigger bool
}

type mail struct {
	To  string
	Msg string
}

func newFakeHost(vars map[string]whenlua.Value) *fakeHost {
	if vars == nil {
		vars = map[string]whenlua.Value{}
	}
	return &fakeHost{memHost: memHost{vars: vars}}
}

func (h *fakeHost) Set(origin string, as []whenlua.Assignment, trigger bool) error {
	h.mu.Lock()
	if h.setErr != nil {
		h.mu.Unlock()
		return h.setErr
	}
	h.sets = append(h.sets, setCall{origin, as, trigger})
	whenlua.ApplyAssignments(h.vars, as)
	onSet := h.onSet
	h.mu.Unlock()
	if onSet != nil {
		onSet()
	}
	return nil
}

func (h *fakeHost) Log(file, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, filepath.Base(file)+": "+msg)
}

func (h *fakeHost) Running() []whenlua.Run { return h.running }

func (h *fakeHost) SendMail(to string, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mails = append(h.mails, mail{to, string(msg)})
}

// loadSrc compiles and loads src as the file "test.lua" (or name), closing
// the file at the end of the test.
func loadSrc(t testing.TB, src string, opts Options) (*File, error) {
	t.Helper()
	path := "test.lua"
	proto, err := Compile(path, []byte(src))
	if err != nil {
		return nil, err
	}
	f, err := Load(path, []byte(src), proto, opts)
	if err == nil {
		t.Cleanup(f.Close)
	}
	return f, err
}

// mustLoad loads src with a time limit long enough that a loaded machine
// does not end a load that builds big values; tests of the time limit
// give their own to loadSrc.
func mustLoad(t testing.TB, src string, h Host) *File {
	t.Helper()
	f, err := loadSrc(t, src, Options{Host: h, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return f
}

func job(t testing.TB, f *File, name string) *Job {
	t.Helper()
	for _, j := range f.Jobs {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("no job %q in %s", name, f.Path)
	return nil
}

// wantErr fails unless err's text contains want.
func wantErr(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func asCallError(t testing.TB, err error) *CallError {
	t.Helper()
	var ce *CallError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *CallError", err, err)
	}
	return ce
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
