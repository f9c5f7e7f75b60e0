package luaapi

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

const fixtures = "../testdata/lua"

// compileFixture reads and compiles the fixture file name.
func compileFixture(t testing.TB, name string) (path string, src []byte, c *Compiled) {
	t.Helper()
	path = filepath.Join(fixtures, name)
	src = readFile(t, path)
	c, err := Compile(path, src)
	if err != nil {
		t.Fatal(err)
	}
	return path, src, c
}

func TestLoadFixtureDeclaresEveryJob(t *testing.T) {
	path, src, proto := compileFixture(t, "jobs.lua")
	h := newFakeHost(nil)
	f, err := Load(path, src, proto, Options{LibDir: filepath.Join(fixtures, "lib"), Host: h})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	type want struct {
		name    string
		kind    Kind
		line    int
		period  string
		cond    string
		deps    []string
		all     bool
		pre     bool
		post    bool
		timeout time.Duration
	}
	wants := []want{
		{name: "jobs.1", kind: Every, line: 4, period: "10 minutes"},
		{name: "disk-alert", kind: When, line: 6, cond: "free < 1000000", deps: []string{"free"}, post: true},
		{name: "ci", kind: When, line: 9, cond: `function() return changes("commit") and vars.branch == "main" end`,
			deps: []string{"branch", "commit"}, pre: true, post: true, timeout: 30 * time.Minute},
		{name: "jobs.4", kind: Every, line: 14, period: "day", pre: true},
		{name: "busy", kind: When, line: 16, cond: "load >= 6 and type == 'busy'", deps: []string{"load", "type"}},
		{name: "weekend", kind: When, line: 18, cond: "function()\n  return helpers.is_weekend(vars.day)\nend", deps: []string{"day"}, all: true},
	}
	if len(f.Jobs) != len(wants) {
		t.Fatalf("got %d jobs, want %d", len(f.Jobs), len(wants))
	}
	for i, w := range wants {
		j := f.Jobs[i]
		t.Run("job "+w.name+" is declared as written", func(t *testing.T) {
			got := want{j.Name, j.Kind, j.Line, "", j.Cond, j.Deps, j.DepsAll, j.HasPre, j.HasPost, j.Timeout}
			if j.Kind == Every {
				got.period = j.Period.String()
			}
			if len(got.deps) == 0 {
				got.deps = nil
			}
			if !reflect.DeepEqual(got, w) {
				t.Fatalf("got  %+v\nwant %+v", got, w)
			}
			if j.File != f {
				t.Fatal("job does not point at its file")
			}
		})
	}
	t.Run("the required module is listed", func(t *testing.T) {
		if want := []string{filepath.Join(fixtures, "lib", "helpers.lua")}; !reflect.DeepEqual(f.Requires, want) {
			t.Fatalf("Requires = %v, want %v", f.Requires, want)
		}
	})
	t.Run("on_load runs when asked, with the load origin", func(t *testing.T) {
		if len(h.sets) != 0 {
			t.Fatalf("Load ran on_load: %v", h.sets)
		}
		if err := f.CallOnLoad(); err != nil {
			t.Fatal(err)
		}
		want := []setCall{{whenlua.OriginLoad(path), []whenlua.Assignment{{Name: "loaded_jobs", Value: whenlua.Bool(true)}}, false}}
		if !reflect.DeepEqual(h.sets, want) {
			t.Fatalf("sets = %+v, want %+v", h.sets, want)
		}
	})
	t.Run("a function from a module evaluates", func(t *testing.T) {
		h.vars["day"] = whenlua.String("sun")
		ok, read, err := job(t, f, "weekend").Eval(EvalInput{})
		if err != nil || !ok || !reflect.DeepEqual(read, []string{"day"}) {
			t.Fatalf("Eval = %v %v %v", ok, read, err)
		}
	})
}

// Every file in testdata/lua/bad starts with "-- want: FILE[:LINE]: MSG":
// the error must start with the file's path and line and contain MSG.
func TestBadFixturesFailWithFileAndLine(t *testing.T) {
	dir := filepath.Join(fixtures, "bad")
	paths, err := filepath.Glob(filepath.Join(dir, "*.lua"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range paths {
		first, _, _ := strings.Cut(string(readFile(t, path)), "\n")
		want, ok := strings.CutPrefix(first, "-- want: ")
		if !ok {
			t.Fatalf("%s has no want line", path)
		}
		loc, msg, _ := strings.Cut(want, ": ")
		t.Run(strings.TrimSuffix(filepath.Base(path), ".lua")+" is a load error at "+loc, func(t *testing.T) {
			old := checkTimeout
			checkTimeout = 100 * time.Millisecond
			defer func() { checkTimeout = old }()
			err := Check(path)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Check = %v (%T), want a *LoadError", err, err)
			}
			if prefix := filepath.Join(dir, loc) + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), msg) {
				t.Fatalf("error %q does not contain %q", err, msg)
			}
		})
	}
}

func TestCheckAcceptsAGoodFile(t *testing.T) {
	if err := Check(filepath.Join(fixtures, "jobs.lua")); err != nil {
		t.Fatal(err)
	}
}

func TestCheckReportsAMissingFile(t *testing.T) {
	err := Check(filepath.Join(fixtures, "no-such-file.lua"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Check = %v, want not exist", err)
	}
}

func TestDeclarationErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"a number is not a condition", `when(5, "true")`, "test.lua:1: when: the condition must be a string"},
		{"a script must be a string", "\nevery(\"hour\", 5)", "test.lua:2: every: the script (argument 2) must be a string, not a number"},
		{"a period must be a string", `every(10, "true")`, "test.lua:1: every: the period must be a string"},
		{"a zero period is refused", `every("0 minutes", "true")`, "test.lua:1: every: period \"0 minutes\": count must be positive"},
		{"options must be a table", `every("hour", "true", "fast")`, "test.lua:1: every: the options (argument 3) must be a table"},
		{"post must be a function", `every("hour", "true", {post = 1})`, "option post must be a function, not a number"},
		{"a name must be a string", `every("hour", "true", {name = 1})`, "option name must be a string"},
		{"a name may not hold spaces", `every("hour", "true", {name = "a b"})`, `job name "a b": want no spaces`},
		{"a timeout must be positive", `every("hour", "true", {timeout = "-5s"})`, "option timeout must be positive"},
		{"a timeout in seconds must be positive", `every("hour", "true", {timeout = -1})`, "option timeout must be positive, not -1"},
		{"a timeout in seconds must fit", `every("hour", "true", {timeout = 1e300})`, "option timeout of 1e+300 seconds is too long (at most 2562047h47m16s)"},
		{"an infinite timeout is too long", `every("hour", "true", {timeout = math.huge})`, "seconds is too long"},
		{"a timeout in seconds is a number", `every("hour", "true", {timeout = 0/0})`, "option timeout must be positive, not NaN"},
		{"a condition is one expression", `when("a; b", "true")`, `when: condition "a; b"`},
		{"a condition with a statement is refused", `when("a end os.exit()", "true")`, `when: condition`},
		{"jobs are not declared from hooks", `on_load(function() every("hour", "true") end)`, ""},
		{"extra arguments are refused", `every("hour", "true", {}, 1)`, "too many arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := loadSrc(t, tc.src, Options{Host: newFakeHost(nil)})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				wantErr(t, f.CallOnLoad(), "test.lua:1: every: jobs are declared at the top level")
				return
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("load = %v, want a *LoadError", err)
			}
			wantErr(t, err, tc.want)
		})
	}
}

func TestTimeoutOptions(t *testing.T) {
	f := mustLoad(t, `
every("hour", "true", {name = "a", timeout = "90s"})
every("hour", "true", {name = "b", timeout = 2.5})
every("hour", "true", {name = "c"})`, newFakeHost(nil))
	for name, want := range map[string]time.Duration{"a": 90 * time.Second, "b": 2500 * time.Millisecond, "c": 0} {
		t.Run("job "+name+" has timeout "+want.String(), func(t *testing.T) {
			if got := job(t, f, name).Timeout; got != want {
				t.Fatalf("Timeout = %v", got)
			}
		})
	}
}

func TestDefaultNamesCountEveryJobInFileOrder(t *testing.T) {
	f := mustLoad(t, `
every("hour", "a")
every("hour", "b", {name = "named"})
when("x", "c")`, newFakeHost(nil))
	var names []string
	for _, j := range f.Jobs {
		names = append(names, j.Name)
	}
	if want := []string{"test.1", "named", "test.3"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
}

func TestCompileErrors(t *testing.T) {
	t.Run("a syntax error has its line", func(t *testing.T) {
		_, err := Compile("x.lua", []byte("\n\nlocal = 5\n"))
		var le *LoadError
		if !errors.As(err, &le) || le.Line != 3 || le.Path != "x.lua" {
			t.Fatalf("Compile = %#v", err)
		}
	})
	t.Run("a syntax error at the end is on the last line", func(t *testing.T) {
		for src, want := range map[string]string{
			"if x then\n":            "x.lua:1: syntax error at end of file (an end, a bracket or a quote missing?)",
			"\nif x then\n\n-- more": "x.lua:4: syntax error at end of file (an end, a bracket or a quote missing?)",
		} {
			_, err := Compile("x.lua", []byte(src))
			var le *LoadError
			if !errors.As(err, &le) || err.Error() != want {
				t.Errorf("Compile(%q) = %v, want %s", src, err, want)
			}
		}
	})
	t.Run("a shebang line is skipped and lines still count", func(t *testing.T) {
		_, err := Compile("x.lua", []byte("#!/usr/bin/env whenlua\nlocal = 1\n"))
		var le *LoadError
		if !errors.As(err, &le) || le.Line != 2 {
			t.Fatalf("Compile = %v", err)
		}
	})
}

func TestLoadFromAProtoNotMadeByCompileStillAnalyses(t *testing.T) {
	src := []byte("when(function() return vars.a end, 'true', {name = 'j'})\n")
	proto, err := Compile("test.lua", src)
	if err != nil {
		t.Fatal(err)
	}
	proto = &Compiled{Proto: proto.Proto} // as if the proto came from elsewhere
	f, err := Load("test.lua", src, proto, Options{Host: newFakeHost(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if j := f.Jobs[0]; !reflect.DeepEqual(j.Deps, []string{"a"}) || j.DepsAll {
		t.Fatalf("Deps = %v, all = %v", j.Deps, j.DepsAll)
	}
}

func TestClosedFileRefusesCalls(t *testing.T) {
	f, err := loadSrc(t, `when("x", "true", {name = "j"})`, Options{Host: newFakeHost(nil)})
	if err != nil {
		t.Fatal(err)
	}
	j := f.Jobs[0]
	f.Close()
	f.Close()
	if _, _, err := j.Eval(EvalInput{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Eval after Close = %v", err)
	}
}

func TestAFailedLoadListsTheModulesItAskedFor(t *testing.T) {
	lib := t.TempDir()
	_, err := loadSrc(t, `require "missing"`, Options{LibDir: lib, Host: newFakeHost(nil)})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("load = %v", err)
	}
	if want := []string{filepath.Join(lib, "missing.lua")}; !reflect.DeepEqual(le.Requires, want) {
		t.Fatalf("Requires = %v, want %v", le.Requires, want)
	}
}

func TestCompileAndLoadRunOnManyGoroutines(t *testing.T) {
	path, src, shared := compileFixture(t, "bench.lua")
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			proto := shared
			if g%2 == 0 {
				var err error
				if proto, err = Compile(path, src); err != nil {
					errs <- err
					return
				}
			}
			h := newFakeHost(map[string]whenlua.Value{"free1": whenlua.Int(1), "threshold1": whenlua.Int(2)})
			f, err := Load(path, src, proto, Options{Host: h})
			if err == nil {
				_, _, err = f.Jobs[1].Eval(EvalInput{})
				f.Close()
			}
			errs <- err
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
