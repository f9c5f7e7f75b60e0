// Package luaapi is the Lua binding of job files: it compiles a file, runs
// it in a fresh sandboxed state per loaded version, collects the jobs it
// declares with when and every, and calls their conditions, pre and post
// functions and the file's on_load/on_unload hooks under a time limit.
//
// A File owns one *lua.LState. It is not safe for concurrent use: one
// goroutine at a time (in the daemon, the engine's) calls into it, and the
// Host is called back on that goroutine. ReadSource, Compile and Load of a
// fresh state may run on any goroutine, several at once and beside calls
// into other Files: the package keeps no mutable state shared between
// states but what a Compiled caches of its conditions and the memory
// watch (watch.go), which are guarded. Load calls its Host on the goroutine that calls it. The
// memory limit measures the whole process's heap, which Go cannot split by
// goroutine: while a Load runs, all growth is charged to it, and the calls
// beside it skip their memory checks, then start them again from the heap
// as it is once no Load runs (watch.go). So a hostile file cannot escape
// its limit by loading beside other calls, and a condition is not failed
// for what a file loading beside it built; several Loads at once are each
// charged with the growth of all (the daemon loads one file at a time).
package luaapi

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/lualib"
)

// Options configure Load.
type Options struct {
	// LibDir is the jobs/lib directory: `require "x"` loads LibDir/x.lua
	// and nothing else. Empty: require finds nothing.
	LibDir string
	// Timeout limits top-level code, each condition, pre, post, on_load and
	// on_unload call (DefaultTimeout when 0).
	Timeout time.Duration
	// MemoryLimit bounds how much each of those calls may grow the
	// process's live heap, in bytes (DefaultMemoryLimit when 0, none when
	// negative); see watch.go.
	MemoryLimit int64
	// Host serves the library functions (an in-memory one when nil).
	Host Host
}

// Host is what the library functions call. It is called on the goroutine
// that called into the state.
type Host interface {
	// Get returns a variable's current value (Nil when unset).
	Get(name string) whenlua.Value
	// Set stores assignments atomically with origin; trigger=false is
	// whisper. A returned error is raised in Lua.
	Set(origin string, as []whenlua.Assignment, trigger bool) error
	// Log writes msg to the daemon log, tagged with the job file.
	Log(file, msg string)
	// Running returns the running runs of every job; CallPre uses it when
	// PreInfo.Running is nil.
	Running() []whenlua.Run
	// SendMail hands a message (headers and body, for `sendmail -t`) off;
	// it never blocks.
	SendMail(to string, msg []byte)
}

// Kind tells when-jobs from every-jobs and cron-jobs.
type Kind int

// The kinds of job.
const (
	When Kind = iota
	Every
	Cron
)

func (k Kind) String() string {
	switch k {
	case Every:
		return "every"
	case Cron:
		return "cron"
	}
	return "when"
}

// File is one loaded version of a job file.
type File struct {
	Path string
	Jobs []*Job
	// Requires lists the lib module paths required while loading (also
	// those that were missing).
	Requires []string
	s        *state
	slips    []Warning // helper calls given a bare name, in the file's code
}

// Job is a job declared by when, every or cron.
type Job struct {
	Name   string
	Kind   Kind
	File   *File
	Line   int // of the when/every/cron call
	Script string
	Period whenlua.Period // every-jobs
	Cron   *whenlua.Cron  // cron-jobs
	// Zone is the tz option of an every-job (nil: epoch-aligned in UTC) or
	// the zone of a cron-job (the daemon's local zone without tz).
	Zone *time.Location
	// Cond is a when-job's condition source: the expression string, or the
	// lines of the function in the file; it tells whether the condition
	// changed across a reload.
	Cond string
	// Deps are the variable names the condition may read, found statically;
	// DepsAll says it may read names the analysis cannot see.
	Deps    []string
	DepsAll bool
	// DepsByReads says that DepsAll is only because names are computed
	// (vars[k]) in a condition whose only inputs are the values it reads:
	// the names an evaluation read may stand for all until one of their
	// values changes.
	DepsByReads bool
	// Impure says the condition may change the file's Lua state or read
	// inputs other than variables (a call the analysis cannot see into,
	// os, table, math.random, an assignment outside its locals).
	Impure  bool
	HasPre  bool
	HasPost bool
	Timeout time.Duration // the run's time limit (0: none)
	// CatchUp (every and cron): a scheduled time missed while the daemon was
	// down or the machine asleep is run once when the daemon notices.
	CatchUp bool
	// Jitter (every and cron): each run starts after a random delay in
	// [0, Jitter) from its scheduled time (0: none).
	Jitter time.Duration
	// Retry: a failed run is started again (nil: never).
	Retry *Retry
	// Hold (when): the job is due once its condition has been true
	// continuously this long (0: at once).
	Hold time.Duration
	// RerunLost: a run lost because its daemon died while it ran (a
	// crash, or a cluster leader that died) is started again, as a new
	// attempt, by the daemon or leader that records it lost.
	RerunLost bool
	// On is where a run of the job starts in a cluster: whenlua.OnAny (any
	// live node claims it; the default), whenlua.OnLeader, or a node's
	// name. A single daemon runs every job itself.
	On string
	// Expect (any kind): a silence alarm is raised when no run of the job
	// succeeded for this long (0: never); HasOnSilence says the job has an
	// on_silence hook, called once per silence (CallOnSilence).
	Expect       time.Duration
	HasOnSilence bool

	cond      *lua.LFunction
	pre, post *lua.LFunction
	onSilence *lua.LFunction
	slips     []Warning // of a string condition
}

// Load runs c's top-level code in a fresh sandboxed state under the time
// limit, collects the declared jobs and validates them (options, periods,
// names unique within the file; a job without a name is "<file stem>.<n>",
// n its position among the file's jobs from 1). It does not call on_load.
// On error it returns a *LoadError (file:line of the offending call when
// known) and closes the state. The returned File belongs to the caller's
// goroutine.
func Load(path string, src []byte, c *Compiled, opts Options) (*File, error) {
	s, err := newState(path, src, c, opts)
	if err != nil {
		return nil, &LoadError{Path: path, Msg: err.Error()}
	}
	f := &File{Path: path, s: s}
	s.file = f
	_, err = s.call(&frame{phase: phaseLoad}, s.L.NewFunctionFromProto(c.Proto), 0)
	if err == nil {
		err = s.finish()
	}
	if err != nil {
		s.close()
		return nil, s.loadError(err)
	}
	f.Jobs = s.jobs
	f.Requires = s.requires
	f.slips = s.fileAST().slips
	// Jobs are declared only while loading: the source, the main chunk and
	// its syntax tree are of no more use, and a daemon keeps many files.
	s.src, s.compiled, s.ast = nil, nil, nil
	return f, nil
}

func (s *state) loadError(err error) *LoadError {
	var le *LoadError
	if errors.As(err, &le) {
		le.Requires = s.requires
		return le
	}
	out := &LoadError{Path: s.path, Msg: err.Error(), Requires: s.requires}
	var ce *CallError
	if errors.As(err, &ce) {
		out.Msg = ce.Msg
		if ce.Path == s.path {
			out.Line = ce.Line
		} else if ce.Line > 0 {
			out.Msg = ce.Error()
		}
	}
	return out
}

// finish names the unnamed jobs and checks names are unique in the file.
func (s *state) finish() error {
	stem := strings.TrimSuffix(filepath.Base(s.path), filepath.Ext(s.path))
	for i, j := range s.jobs {
		if j.Name != "" {
			continue
		}
		if !utf8.ValidString(stem) {
			return &LoadError{Path: s.path, Line: j.Line,
				Msg: fmt.Sprintf("the file name %q is not valid UTF-8, so an unnamed job cannot be named after it: give the job a name", filepath.Base(s.path))}
		}
		j.Name = fmt.Sprintf("%s.%d", stem, i+1)
		if line, dup := s.names[j.Name]; dup {
			return &LoadError{Path: s.path, Line: max(line, j.Line),
				Msg: fmt.Sprintf("job name %q is used twice in this file (lines %d and %d; unnamed jobs are called <file>.<n>)", j.Name, min(line, j.Line), max(line, j.Line))}
		}
		s.names[j.Name] = j.Line
	}
	return nil
}

// CallOnLoad calls the on_load hooks in the order they were registered,
// stopping at the first error (a *CallError).
func (f *File) CallOnLoad() error {
	for _, fn := range f.s.onLoad {
		if _, err := f.s.call(&frame{phase: phaseHook}, fn, 0); err != nil {
			return err
		}
	}
	return nil
}

// CallOnUnload calls every on_unload hook, in order, and returns their
// errors joined.
func (f *File) CallOnUnload() error {
	var errs []error
	for _, fn := range f.s.onUnload {
		if _, err := f.s.call(&frame{phase: phaseHook}, fn, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Required lists the lib module paths required so far by this version of
// the file: while it loaded and since (a require inside a condition or a
// hook). It is called on the goroutine that owns the file.
func (f *File) Required() []string { return slices.Clone(f.s.requires) }

// Close releases the Lua state; later calls into the file return ErrClosed.
func (f *File) Close() { f.s.close() }

// Closed reports whether Close has been called: the state is released.
func (f *File) Closed() bool { return f.s.L == nil }

// declare builds when(cond, script [, opts]), every(period, script [, opts])
// and cron(expr, script [, opts]).
func (s *state) declare(kind Kind) lua.LGFunction {
	fname := kind.String()
	return func(L *lua.LState) int {
		if s.cur.phase != phaseLoad {
			L.RaiseError("%s: jobs are declared at the top level of a job file, while it loads", fname)
		}
		line := 0
		if dbg, ok := L.GetStack(1); ok {
			if _, err := L.GetInfo("l", dbg, lua.LNil); err == nil {
				line = dbg.CurrentLine
			}
		}
		j := &Job{Kind: kind, File: s.file, Line: line, On: whenlua.OnAny}
		switch kind {
		case When:
			switch c := L.Get(1).(type) {
			case lua.LString:
				if err := s.stringCond(j, string(c)); err != nil {
					L.RaiseError("when: condition %q: %v", clip(string(c), 60), err)
				}
			case *lua.LFunction:
				s.funcCond(j, c)
			default:
				L.RaiseError("when: the condition must be a string (a Lua expression) or a function, not a %s", c.Type())
			}
		case Every:
			ps, err := lualib.AsString(L.Get(1), "every: the period", `a string such as "10 minutes"`)
			if err != nil {
				L.RaiseError("%v", err)
			}
			p, err := whenlua.ParsePeriod(ps)
			if err != nil {
				L.RaiseError("every: %s", strings.TrimPrefix(err.Error(), whenlua.ErrInvalid.Error()+": "))
			}
			j.Period = p
		case Cron:
			if _, err := lualib.AsString(L.Get(1), "cron: the expression", `a string such as "30 2 * * 1-5"`); err != nil {
				L.RaiseError("%v", err)
			}
		}
		script, err := lualib.AsString(L.Get(2), fname+": the script (argument 2)", "a string")
		if err != nil {
			L.RaiseError("%v", err)
		}
		j.Script = script
		if o := L.Get(3); o != lua.LNil {
			opts, err := lualib.AsTable(o, fname+": the options (argument 3)", "a table")
			if err != nil {
				L.RaiseError("%v", err)
			}
			if err := s.jobOptions(j, opts); err != nil {
				L.RaiseError("%s: %v", fname, err)
			}
		}
		if L.GetTop() > 3 {
			L.RaiseError("%s: too many arguments (want %s(%s, script [, options]))", fname, fname, map[Kind]string{When: "condition", Every: "period", Cron: "expression"}[kind])
		}
		if kind == Cron {
			if j.Zone == nil {
				j.Zone = time.Local
			}
			c, err := whenlua.ParseCron(string(L.Get(1).(lua.LString)), j.Zone)
			if err != nil {
				L.RaiseError("%s", strings.TrimPrefix(err.Error(), whenlua.ErrInvalid.Error()+": "))
			}
			j.Cron = c
		}
		if j.Name != "" {
			if first, dup := s.names[j.Name]; dup {
				L.RaiseError("%s: job name %q is used twice in this file (first at line %d)", fname, j.Name, first)
			}
			s.names[j.Name] = line
		}
		s.jobs = append(s.jobs, j)
		return 0
	}
}

// jobOptions reads opts: name, pre, post, timeout, retry, rerun_lost, on,
// expect, on_silence, hold for when, and tz, catch_up and jitter for every
// and cron. Anything else is an error.
func (s *state) jobOptions(j *Job, opts *lua.LTable) error {
	err := lualib.Fields(opts, func(k, v lua.LValue) error {
		key, ok := k.(lua.LString)
		if !ok {
			return fmt.Errorf("option keys are names, not a %s", k.Type())
		}
		var err error
		switch key {
		case "name":
			if j.Name, err = lualib.AsString(v, "option name", "a string"); err == nil {
				err = validJobName(j.Name)
			}
		case "pre", "post", "on_silence":
			var fn *lua.LFunction
			if fn, err = lualib.AsFunction(v, "option "+string(key)); err != nil {
				return err
			}
			switch key {
			case "pre":
				j.pre, j.HasPre = fn, true
			case "post":
				j.post, j.HasPost = fn, true
			default:
				j.onSilence, j.HasOnSilence = fn, true
			}
		case "expect":
			j.Expect, err = lualib.OptDuration("expect", v)
		case "timeout":
			j.Timeout, err = lualib.OptDuration("timeout", v)
		case "tz":
			j.Zone, err = zoneOption(j.Kind, v)
		case "catch_up":
			if j.Kind == When {
				return errors.New("option catch_up is for every and cron jobs")
			}
			j.CatchUp, err = lualib.AsBool(v, "option catch_up", "true or false")
		case "retry":
			j.Retry, err = retryOption(v)
		case "rerun_lost":
			b, ok := v.(lua.LBool)
			if !ok {
				err = fmt.Errorf("option rerun_lost must be true or false, not a %s", v.Type())
			}
			j.RerunLost = bool(b)
		case "on":
			if j.On, err = lualib.AsString(v, "option on", `"any", "leader" or a node's name`); err == nil && j.On != whenlua.OnAny && j.On != whenlua.OnLeader {
				if whenlua.ValidateNodeName(j.On) != nil {
					err = fmt.Errorf(`option on: want "any", "leader" or a node's name (letters, digits, '-', '_', '.'), not %q`, j.On)
				}
			}
		case "hold":
			if j.Kind != When {
				return errors.New("option hold is for when jobs")
			}
			j.Hold, err = lualib.OptDuration("hold", v)
		case "jitter":
			if j.Kind == When {
				return errors.New("option jitter is for every and cron jobs")
			}
			j.Jitter, err = lualib.OptDuration("jitter", v)
		default:
			want := "name, pre, post, timeout, retry, rerun_lost, on, expect, on_silence or hold"
			if j.Kind != When {
				want = "name, pre, post, timeout, retry, rerun_lost, on, expect, on_silence, tz, catch_up or jitter"
			}
			err = fmt.Errorf("unknown option %q (want %s)", string(key), want)
		}
		return err
	})
	if err == nil && j.HasOnSilence && j.Expect == 0 {
		// A hook that could never be called is most likely a forgotten expect.
		err = errors.New("option on_silence needs option expect (how long without a successful run is a silence)")
	}
	return err
}

// validJobName accepts printable names without spaces, up to MaxNameLen bytes.
func validJobName(name string) error {
	if name == "" {
		return errors.New("option name is empty")
	}
	if len(name) > whenlua.MaxNameLen {
		return fmt.Errorf("job name of %d bytes is longer than %d", len(name), whenlua.MaxNameLen)
	}
	if !utf8.ValidString(name) {
		// A name is a metric label, JSON and a terminal's text: all UTF-8.
		return fmt.Errorf("job name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '/' {
			return fmt.Errorf("job name %q: want no spaces, slashes or control characters", name)
		}
	}
	return nil
}

// zoneOption reads the tz option: an IANA zone name, for every and cron.
func zoneOption(kind Kind, v lua.LValue) (*time.Location, error) {
	if kind == When {
		return nil, errors.New("option tz is for every and cron jobs (a when-job has no times)")
	}
	name, err := lualib.AsString(v, "option tz", `a zone name such as "Europe/Berlin"`)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("option tz is empty (leave it out for the local zone)")
	}
	loc, err := whenlua.LoadZone(name)
	if err != nil {
		return nil, fmt.Errorf("option tz: %s", strings.TrimPrefix(err.Error(), whenlua.ErrInvalid.Error()+": "))
	}
	return loc, nil
}

// Next returns the first time after `after` an every- or cron-job is due:
// cron times in its zone, every periods from the epoch or, with tz, from
// local midnights (SPEC §8). Zero for a when-job, or a cron expression
// with no more times.
func (j *Job) Next(after time.Time) time.Time {
	switch j.Kind {
	case Every:
		return j.Period.NextIn(after, j.Zone)
	case Cron:
		return j.Cron.Next(after)
	}
	return time.Time{}
}

// Schedule describes when an every- or cron-job runs, as listings show
// it: "every 10 minutes", "cron 30 2 * * 1-5"; "" for a when-job.
func (j *Job) Schedule() string {
	switch j.Kind {
	case Every:
		return "every " + j.Period.String()
	case Cron:
		return "cron " + j.Cron.String()
	}
	return ""
}

// ZoneName names the zone an every- or cron-job's times are read in:
// "UTC" for an every-job without tz; "" for a when-job.
func (j *Job) ZoneName() string {
	if j.Kind == When {
		return ""
	}
	if j.Zone == nil {
		return "UTC"
	}
	return whenlua.ZoneName(j.Zone)
}
