package luaapi

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// fakeBackend is a daemon in memory for the REPL: Vars returns vars, a test
// reports the jobs in due (by variable name), sets are refused.
type fakeBackend struct {
	vars  map[string]whenlua.Value
	tests [][]whenlua.Assignment
	due   map[string]string // variable name -> job a test of it would run
}

func (b *fakeBackend) Vars() (map[string]whenlua.Value, error) { return maps.Clone(b.vars), nil }
func (b *fakeBackend) Names() ([]whenlua.JobInfo, error) {
	return []whenlua.JobInfo{{Name: "hello", Kind: "when", Cond: "x == 1", File: "/j/a.lua", Line: 2},
		{Name: "tick", Kind: "every", Period: "10 seconds", File: "/j/a.lua", Line: 3}}, nil
}
func (b *fakeBackend) Why(job string) (whenlua.WhyReport, error) {
	if job != "hello" {
		return whenlua.WhyReport{}, errors.New("not found: no job named " + job)
	}
	prev := whenlua.Int(0)
	return whenlua.WhyReport{Job: "hello", Loaded: true, Kind: "when", Spec: "x == 1", File: "/j/a.lua", Line: 2,
		Evaluations: []whenlua.Evaluation{{Job: "hello", Seq: 2, Time: time.Unix(0, 0), Cond: true, Outcome: whenlua.OutcomeFalse,
			Trigger: whenlua.Trigger{Kind: whenlua.TriggerSet, Origin: "cli", Names: []string{"x"}},
			Values:  []whenlua.ReadValue{{Name: "x", Value: whenlua.Int(2), Prev: &prev}}}}}, nil
}
func (b *fakeBackend) Set(mode whenlua.Mode, as []whenlua.Assignment) (ReplResult, error) {
	if mode != whenlua.ModeTest {
		return ReplResult{}, errors.New("refused")
	}
	b.tests = append(b.tests, as)
	var res ReplResult
	for _, a := range as {
		if j := b.due[a.Name]; j != "" {
			res.Triggered = append(res.Triggered, j)
		}
	}
	return res, nil
}

func newTestRepl(t *testing.T, b ReplBackend) (*Repl, *strings.Builder) {
	t.Helper()
	out := &strings.Builder{}
	r, err := NewRepl(ReplOptions{Backend: b, Out: out, Timeout: 200 * time.Millisecond, SetHint: "the REPL does not change the daemon's variables"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, out
}

// evalOut runs chunk and returns what it printed, failing on an error.
func evalOut(t *testing.T, r *Repl, out *strings.Builder, chunk string) string {
	t.Helper()
	out.Reset()
	inc, err := r.Eval(chunk)
	if inc || err != nil {
		t.Fatalf("Eval(%q): incomplete %v, %v", chunk, inc, err)
	}
	return out.String()
}

// replCase is a chunk for the REPL and what it must print.
type replCase struct{ in, want string }

// wantPrints evaluates each case in turn; when says at what point of the
// session they run.
func wantPrints(t *testing.T, r *Repl, out *strings.Builder, when string, cases []replCase) {
	t.Helper()
	for _, c := range cases {
		if got := evalOut(t, r, out, c.in); got != c.want {
			t.Errorf("%s%s printed %q, want %q", when, c.in, got, c.want)
		}
	}
}

func TestReplPrintsExpressionsAndRunsStatements(t *testing.T) {
	b := &fakeBackend{vars: map[string]whenlua.Value{"load": whenlua.Float(6.5), "type": whenlua.String("busy"), "n": whenlua.Int(3)}}
	r, out := newTestRepl(t, b)
	wantPrints(t, r, out, "", []replCase{
		{"1 + 1", "2\n"},
		{"load >= 6 and type == 'busy'", "true\n"},
		{"unset_name", "nil\n"},
		{"vars.n * 2", "6\n"},
		{"tostring(n) .. '!'", "3!\n"},
		{"string.format('%d', n)", "3\n"},
		{"math.max(n, 10)", "10\n"},
		{"1, 'a', nil", "1\ta\tnil\n"},
		{"{1, 2, k = 'v', t = {3}}", `{1, 2, k = "v", t = {3}}` + "\n"},
		{"print('hi', 2)", "hi\t2\n"},
		{"f = function(a) return a * n end", ""},
		{"f(2)", "6\n"},
		{"local z = 5", ""},
		{"_G.type(n)", "number\n"},
		{"_G.select('#', 1, 2)", "2\n"},
		{"vars()", "load=6.5\nn=3\ntype=busy\n"},
		{"vars", "load=6.5\nn=3\ntype=busy\n"},
	})
}

func TestReplErrorsArePositionedAndTheSessionGoesOn(t *testing.T) {
	b := &fakeBackend{vars: map[string]whenlua.Value{"n": whenlua.Int(3)}}
	r, out := newTestRepl(t, b)
	for _, c := range []struct{ in, want string }{
		{"1 +* 2", "stdin:1: syntax error"},
		{"_G.error('boom')", "stdin:1: boom"},
		{"error('boom')", "stdin:1: attempt to call a non-function object"}, // error is a variable here
		{"nosuch.field", "stdin:1: attempt to index a non-table object(nil)"},
		{"n = 4", "n is a variable"},
		{"while true do end", "time limit"},
		{"set{x = 1}", "the REPL does not change the daemon's variables"},
		{"test{x = {}}", "a table cannot be stored"},
		{"test{['1x'] = 1}", "variable name"},
		{"test(1)", "want test(name, value)"},
		{strings.Repeat("not ", 300) + "true", "stdin:1: nesting too deep (limit 200"},
		{"x = " + strings.Repeat("- ", 300) + "1", "stdin:1: nesting too deep (limit 200"},
	} {
		inc, err := r.Eval(c.in)
		if inc || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: incomplete %v, error %v, want %q", c.in, inc, err, c.want)
		}
	}
	if got := evalOut(t, r, out, "n + 1"); got != "4\n" {
		t.Errorf("after the errors, n + 1 printed %q", got)
	}
}

func TestReplDetectsIncompleteChunks(t *testing.T) {
	r, out := newTestRepl(t, &fakeBackend{})
	for _, in := range []string{"if true then", "function g()", "f(", "x = [[abc", "return 1 +", "t = {"} {
		if inc, err := r.Eval(in); !inc || err == nil {
			t.Errorf("%q: incomplete %v, %v; want incomplete", in, inc, err)
		}
	}
	for _, in := range []string{"x = \"abc", "x y", "return x)"} {
		if inc, err := r.Eval(in); inc || err == nil {
			t.Errorf("%q: incomplete %v, %v; want a syntax error", in, inc, err)
		}
	}
	if got := evalOut(t, r, out, "function g(a)\n  return a + 1\nend"); got != "" {
		t.Errorf("multi-line definition printed %q", got)
	}
	if got := evalOut(t, r, out, "g(\n41\n)"); got != "42\n" {
		t.Errorf("multi-line call printed %q", got)
	}
	if _, err := r.Eval("if true then\n_G.error('deep')\nend"); err == nil || !strings.HasPrefix(err.Error(), "stdin:2: deep") {
		t.Errorf("error in a multi-line chunk: %v, want stdin:2", err)
	}
}

func TestReplHelpersCompareWithTheSnapshotBeforeTheLastRefresh(t *testing.T) {
	b := &fakeBackend{vars: map[string]whenlua.Value{"x": whenlua.Int(1), "s": whenlua.String("a")}}
	r, out := newTestRepl(t, b)
	wantPrints(t, r, out, "before a refresh, ", []replCase{
		{"prev('x')", "nil\n"},
		{"changes('x')", "true\n"},
		{"increases('x')", "false\n"},
		{"reloaded()", "true\n"},
	})
	b.vars["x"] = whenlua.Int(5)
	if got := evalOut(t, r, out, "x"); got != "1\n" {
		t.Errorf("the snapshot moved without a refresh: x = %q", got)
	}
	evalOut(t, r, out, "refresh()")
	wantPrints(t, r, out, "after a refresh, ", []replCase{
		{"x", "5\n"},
		{"prev('x')", "1\n"},
		{"changes('x')", "true\n"},
		{"changes('s')", "false\n"},
		{"increases('x')", "true\n"},
		{"decreases('x')", "false\n"},
		{"reloaded()", "false\n"},
		{"x >= 5 and changes('x')", "true\n"},
	})
	evalOut(t, r, out, "refresh()")
	if got := evalOut(t, r, out, "changes('x')"); got != "false\n" {
		t.Errorf("after a second refresh without change, changes('x') = %q", got)
	}
}

func TestReplTestAndJobsGoToTheBackend(t *testing.T) {
	b := &fakeBackend{due: map[string]string{"x": "hello"}}
	r, out := newTestRepl(t, b)
	if got := evalOut(t, r, out, "test{x = 1, y = 'two'}"); got != "hello\n" {
		t.Errorf("test printed %q", got)
	}
	want := []whenlua.Assignment{{Name: "x", Value: whenlua.Int(1)}, {Name: "y", Value: whenlua.String("two")}}
	if len(b.tests) != 1 || len(b.tests[0]) != 2 || b.tests[0][0] != want[0] || b.tests[0][1] != want[1] {
		t.Errorf("the backend got %v, want %v", b.tests, want)
	}
	if got := evalOut(t, r, out, "test('y', true)"); got != "(none)\n" {
		t.Errorf("test of nothing due printed %q", got)
	}
	if got := evalOut(t, r, out, "jobs()"); got != "hello\twhen\tx == 1\t/j/a.lua:2\ntick\tevery\t10 seconds\t/j/a.lua:3\n" {
		t.Errorf("jobs printed %q", got)
	}
	if got := evalOut(t, r, out, "help()"); !strings.Contains(got, "test{x = 1, ...}") || !strings.Contains(got, `why("JOB")`) {
		t.Errorf("help printed %q", got)
	}
	rep, _ := b.Why("hello")
	if got, want := evalOut(t, r, out, `why("hello")`), strings.Join(rep.Lines(), "\n")+"\n"; got != want || !strings.Contains(got, "not due: false") || !strings.Contains(got, "x = 2 (previous 0)") {
		t.Errorf("why printed %q, want %q", got, want)
	}
	if _, err := r.Eval(`why("nope")`); err == nil || !strings.Contains(err.Error(), "why: not found: no job named nope") {
		t.Errorf("why of an unknown job: %v", err)
	}
}

func writeJobFile(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.lua")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openLocal opens a local evaluator on a job file of src, closed when the
// test ends, and returns it and the file's path.
func openLocal(t *testing.T, src string) (*Local, string) {
	t.Helper()
	path := writeJobFile(t, src)
	l, errs := OpenLocal([]string{path}, 0)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	t.Cleanup(l.Close)
	return l, path
}

func TestLocalEvaluatesWhenJobsAsTheDaemonWould(t *testing.T) {
	l, _ := openLocal(t, `
when("x >= 6", "true", { name = "high" })
when("changes('x')", "true", { name = "moved" })
when(function() return vars.a and changes("b") end, "true", { name = "ab" })
when("reloaded()", "true", { name = "boot" })
when("y == 1", "true", { name = "y1" })
every("hour", "true", { name = "hourly" })
on_load(function() whisper("a", true) end)
`)
	if got := strings.Join(l.Loaded.Triggered, " "); got != "boot" {
		t.Errorf("due on load: %q, want boot", got)
	}
	set := func(mode whenlua.Mode, name string, v whenlua.Value) string {
		t.Helper()
		res, err := l.Set(mode, []whenlua.Assignment{{Name: name, Value: v}})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(res.Triggered, " ")
	}
	steps := []struct {
		mode whenlua.Mode
		name string
		v    whenlua.Value
		want string
	}{
		{whenlua.ModeTest, "x", whenlua.Int(7), "high moved"},
		{whenlua.ModeTest, "x", whenlua.Int(7), "high moved"}, // a test changes nothing
		{whenlua.ModeSet, "x", whenlua.Int(7), "high moved"},
		{whenlua.ModeSet, "x", whenlua.Int(8), "moved"}, // high stays true: not again
		{whenlua.ModeSet, "x", whenlua.Int(8), ""},      // same value: no change
		{whenlua.ModeSet, "b", whenlua.Int(1), "ab"},
		{whenlua.ModeWhisper, "b", whenlua.Int(2), ""},
		{whenlua.ModeSet, "y", whenlua.Int(1), "y1"},     // ab does not read y: not evaluated
		{whenlua.ModeSet, "a", whenlua.Bool(true), "ab"}, // the whispered b fires at the next evaluation
		{whenlua.ModeSet, "x", whenlua.Int(1), "moved"},
		{whenlua.ModeTest, "x", whenlua.Int(6), "high moved"},
	}
	for i, s := range steps {
		if got := set(s.mode, s.name, s.v); got != s.want {
			t.Errorf("step %d: %s %s=%v ran %q, want %q", i, s.mode, s.name, s.v, got, s.want)
		}
	}
	vs, _ := l.Vars()
	if !vs["x"].Equal(whenlua.Int(1)) || !vs["b"].Equal(whenlua.Int(2)) || !vs["a"].Equal(whenlua.Bool(true)) {
		t.Errorf("vars after the steps: %v", vs)
	}
	names, _ := l.Names()
	if len(names) != 6 || names[5].Name != "hourly" || names[5].Period == "" || names[0].Cond != "x >= 6" {
		t.Errorf("names: %+v", names)
	}
}

func TestLocalReportsConditionErrors(t *testing.T) {
	l, path := openLocal(t, `when("x.y == 1", "true", { name = "bad" })`)
	res, err := l.Set(whenlua.ModeTest, []whenlua.Assignment{{Name: "x", Value: whenlua.Int(1)}})
	if err != nil || len(res.Triggered) != 0 || len(res.CondErrors) != 1 || !strings.Contains(res.CondErrors[0], "bad: "+path+":1:") {
		t.Errorf("test of a failing condition: %+v, %v", res, err)
	}
}

func TestLocalRefusesNamesUsedInTwoFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.lua"), filepath.Join(dir, "b.lua")
	os.WriteFile(a, []byte(`when("x", "true", { name = "same" })`), 0o600)
	os.WriteFile(b, []byte("\nevery('hour', 'true', { name = 'same' })"), 0o600)
	l, errs := OpenLocal([]string{a, b}, 0)
	if l != nil || len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), b+`:2: job name "same" is already used by `+a+":1") {
		t.Errorf("OpenLocal of a clash: %v, %v", l, errs)
	}
}

func TestReplOnLocalSetsTheLocalSnapshot(t *testing.T) {
	l, path := openLocal(t, `when("x > 1", "true", { name = "big" })`)
	r, out := newTestRepl(t, l)
	wantPrints(t, r, out, "", []replCase{
		{"x", "nil\n"},
		{"test{x = 2}", "big\n"},
		{"x", "nil\n"},
		{"set('x', 2)", "big\n"},
		{"x", "2\n"},
		{"set{x = 3}", "(none)\n"}, // still > 1: no edge
		{"prev('x')", "nil\n"},     // set keeps the previous snapshot
		{"refresh()", ""},
		{"prev('x')", "3\n"},
		{"whisper{x = 0}", ""},
		{"x", "0\n"},
		{"test{x = 5}", "(none)\n"}, // whispered: big has not seen x go down
		{"set{x = 1}", "(none)\n"},
		{"test{x = 5}", "big\n"},
		{"jobs()", "big\twhen\tx > 1\t" + path + ":1\n"},
	})
}
