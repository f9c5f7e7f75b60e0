package luaapi

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sort"
	"time"

	"github.com/whenlua/whenlua"
)

// Local loads job files in the process, without a daemon, and evaluates
// their when-jobs against variables kept in memory as the daemon would
// (SPEC §4): each when-job keeps its previous snapshot and result, a set
// re-evaluates the jobs that may read what it set until the due set stops
// growing, and a job is due when its condition goes from false to true.
// Nothing runs: a due job is only reported. It is the backend of
// `whenlua repl --file`. Not safe for concurrent use.
type Local struct {
	vars  map[string]whenlua.Value
	files []*File
	whens []*Job // sorted by name
	jobs  map[*Job]*localJob
	// Loaded names the jobs that became due when the files loaded (their
	// first evaluation, with reloaded() true).
	Loaded ReplResult
}

// localJob is a when-job's evaluation state.
type localJob struct {
	evaluated, result, reloaded bool
	snap                        map[string]whenlua.Value
	deps                        map[string]bool
}

func (lj *localJob) clone() *localJob {
	c := *lj
	c.deps = maps.Clone(lj.deps)
	return &c
}

// localHost is a Host over Local's variables, for one file.
type localHost struct{ l *Local }

func (h localHost) Get(name string) whenlua.Value { return h.l.vars[name] }
func (h localHost) Set(_ string, as []whenlua.Assignment, _ bool) error {
	h.l.apply(as) // lualib's set validated them
	return nil
}
func (h localHost) Log(string, string)      {}
func (h localHost) Running() []whenlua.Run  { return nil }
func (h localHost) SendMail(string, []byte) {}

// OpenLocal loads the job files at paths in order, each with LibDir =
// dir(path)/lib and the time limit timeout (DefaultTimeout when 0), checks
// that job names are unique across them, calls their on_load hooks, then
// evaluates every when-job once with reloaded() true, as the daemon does
// on load. Variables start empty (top-level code and on_load may set some).
// It returns every load error (*LoadError, *CallError or an os error); on
// error nothing stays open.
func OpenLocal(paths []string, timeout time.Duration) (*Local, []error) {
	l := &Local{vars: map[string]whenlua.Value{}, jobs: map[*Job]*localJob{}}
	var errs []error
	taken := map[string]*Job{}
	for _, path := range paths {
		src, err := ReadSource(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		proto, err := Compile(path, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f, err := Load(path, src, proto, Options{LibDir: filepath.Join(filepath.Dir(path), "lib"), Timeout: timeout, Host: localHost{l}})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		clash := false
		for _, j := range f.Jobs {
			if other := taken[j.Name]; other != nil {
				errs = append(errs, &LoadError{Path: path, Line: j.Line,
					Msg: fmt.Sprintf("job name %q is already used by %s:%d", j.Name, other.File.Path, other.Line)})
				clash = true
			}
		}
		if clash {
			f.Close()
			continue
		}
		for _, j := range f.Jobs {
			taken[j.Name] = j
		}
		l.files = append(l.files, f)
	}
	for _, f := range l.files {
		if err := f.CallOnLoad(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		l.Close()
		return nil, errs
	}
	for _, f := range l.files {
		for _, j := range f.Jobs {
			if j.Kind != When {
				continue
			}
			lj := &localJob{reloaded: true, deps: map[string]bool{}}
			for _, d := range j.Deps {
				lj.deps[d] = true
			}
			l.jobs[j] = lj
			l.whens = append(l.whens, j)
		}
	}
	sort.Slice(l.whens, func(a, b int) bool { return whenlua.JobNameLess(l.whens[a].Name, l.whens[b].Name) })
	l.Loaded = l.fixpoint(l.whens)
	return l, nil
}

// Close closes the files' states.
func (l *Local) Close() {
	for _, f := range l.files {
		f.Close()
	}
	l.files = nil
}

// Vars implements ReplBackend: a copy of the variables.
func (l *Local) Vars() (map[string]whenlua.Value, error) { return maps.Clone(l.vars), nil }

// Why implements ReplBackend: the evaluations are the daemon's, which keeps
// them; the files loaded here keep none.
func (l *Local) Why(job string) (whenlua.WhyReport, error) {
	return whenlua.WhyReport{}, errors.New("the daemon keeps the evaluations: use the REPL without --file, or whenlua why")
}

// Names implements ReplBackend: every job of the files, in file order.
func (l *Local) Names() ([]whenlua.JobInfo, error) {
	var out []whenlua.JobInfo
	for _, f := range l.files {
		for _, j := range f.Jobs {
			ji := whenlua.JobInfo{Name: j.Name, File: f.Path, Line: j.Line, Kind: j.Kind.String()}
			switch j.Kind {
			case When:
				ji.Cond = j.Cond
			case Cron:
				ji.Cron, ji.Zone = j.Cron.String(), j.ZoneName()
			default:
				ji.Period, ji.Zone = j.Period.String(), j.ZoneName()
			}
			out = append(out, ji)
		}
	}
	return out, nil
}

// Set implements ReplBackend. ModeSet stores the values and evaluates the
// when-jobs that may read them (their names found statically or read in an
// earlier evaluation; a job whose reads cannot be known is always
// evaluated) until the set of due jobs stops growing. ModeWhisper only
// stores. ModeTest does what ModeSet would and then restores the
// variables and every job's state. as has passed whenlua.SetRequest.Validate
// (the REPL's set, whisper and test check it).
func (l *Local) Set(mode whenlua.Mode, as []whenlua.Assignment) (ReplResult, error) {
	seen := make(map[string]bool, len(as))
	for _, a := range as {
		seen[a.Name] = true
	}
	switch mode {
	case whenlua.ModeWhisper:
		l.apply(as)
		return ReplResult{}, nil
	case whenlua.ModeSet:
		l.apply(as)
		return l.fixpoint(l.candidates(seen)), nil
	case whenlua.ModeTest:
		vars := maps.Clone(l.vars)
		jobs := make(map[*Job]*localJob, len(l.jobs))
		for j, lj := range l.jobs {
			jobs[j] = lj.clone()
		}
		l.apply(as)
		res := l.fixpoint(l.candidates(seen))
		l.vars, l.jobs = vars, jobs
		return res, nil
	}
	return ReplResult{}, errors.New("unknown mode " + string(mode))
}

func (l *Local) apply(as []whenlua.Assignment) { whenlua.ApplyAssignments(l.vars, as) }

// candidates are the when-jobs that may read any of names, in name order.
func (l *Local) candidates(names map[string]bool) []*Job {
	var out []*Job
	for _, j := range l.whens {
		lj := l.jobs[j]
		if j.DepsAll {
			out = append(out, j)
			continue
		}
		for n := range names {
			if lj.deps[n] {
				out = append(out, j)
				break
			}
		}
	}
	return out
}

// fixpoint evaluates cands (in name order) repeatedly until the set of due
// jobs stops growing and returns the due ones in name order.
func (l *Local) fixpoint(cands []*Job) ReplResult {
	due := map[*Job]bool{}
	errs := map[*Job]string{}
	for {
		grew := false
		for _, j := range cands {
			ok, err := l.eval(j)
			if err != nil {
				errs[j] = j.Name + ": " + err.Error()
			} else {
				delete(errs, j)
			}
			if ok && !due[j] {
				due[j] = true
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	// reloaded() stays true through the whole fixpoint after the load.
	for _, j := range cands {
		l.jobs[j].reloaded = false
	}
	var res ReplResult
	for _, j := range cands {
		if due[j] {
			res.Triggered = append(res.Triggered, j.Name)
		}
		if e, ok := errs[j]; ok {
			res.CondErrors = append(res.CondErrors, e)
		}
	}
	return res
}

// eval evaluates one when-job, moves its snapshot and result on, and
// reports whether it is due (true now, false at the previous evaluation).
func (l *Local) eval(j *Job) (bool, error) {
	lj := l.jobs[j]
	ev := j.Evaluate(EvalInput{Evaluated: lj.evaluated, Prev: lj.snap, Reloaded: lj.reloaded})
	for _, n := range ev.Read {
		lj.deps[n] = true
	}
	if ev.Err != nil {
		// The previous snapshot and result stay, as in the daemon.
		return false, ev.Err
	}
	ok := ev.OK
	var snap map[string]whenlua.Value
	if j.DepsAll {
		snap = maps.Clone(l.vars)
	} else {
		snap = make(map[string]whenlua.Value, len(lj.deps))
		for n := range lj.deps {
			snap[n] = l.vars[n]
		}
	}
	due := ok && (!lj.result || ev.AskedReloaded && lj.reloaded)
	lj.evaluated, lj.result, lj.snap = true, ok, snap
	return due, nil
}
