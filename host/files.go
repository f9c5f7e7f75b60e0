package host

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/luaapi"
)

// fileEntry is what the engine knows of one job file path.
type fileEntry struct {
	path     string
	cur      *generation   // the active version; nil when none ever loaded
	pending  *generation   // a loaded version waiting for its job names to be free
	old      []*generation // replaced versions whose runs are still going
	hash     string        // hash of the content last examined (loaded or not)
	err      string        // load error of that content, "" when it is active
	errAt    time.Time
	hookErr  string // last on_load/on_unload error of the file
	hookAt   time.Time
	compiles uint64
	gens     uint64
	requires []string // lib modules the last load attempt required
	// carried are the every- and cron-jobs of the version retired last, by
	// name, schedule and zone, whose pending firing (next run and scheduled
	// time) the version that replaces it takes over.
	carried map[string]pendingFiring
}

// generation is one loaded version of one job file: its Lua state, its jobs
// and the count of its runs still going. Owned by the engine goroutine.
type generation struct {
	id       uint64
	path     string
	file     *luaapi.File
	host     *fileHost
	hash     string
	loadedAt time.Time
	jobs     []*job
	runs     int
	fresh    int // observed when-jobs not stale (state.mayHaveChanged)
	retired  bool
	closed   bool
}

type fileStat struct {
	mtime time.Time
	size  int64
	ino   uint64
}

func statOf(fi os.FileInfo) fileStat {
	s := fileStat{mtime: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = sys.Ino
	}
	return s
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// IsJobFile tells whether a directory entry name is a job file: *.lua, not
// hidden, not an editor's lock or backup file.
func IsJobFile(name string) bool { return whenlua.IsJobFile(name) }

// applyLoad takes what a scan found (loader.scan) and makes it the live
// set, as Prometheus' rules manager does: every changed file was loaded
// first; now the job names of the whole new set are checked; then the
// versions that pass are swapped in, all at once. A new version whose names
// clash waits, with the error shown, while its previous version stays
// active; it is checked again at every scan, so that names swapped between
// two files load once both edits are there. A when-job keeps its snapshot
// and edge state across files of one scan when its name and condition are
// unchanged (a file renamed, a job moved to another file).
func (st *state) applyLoad(b *loadBatch) {
	for _, r := range b.results {
		ent := st.files[r.path]
		if ent == nil {
			ent = &fileEntry{path: r.path}
			st.files[r.path] = ent
		}
		ent.compiles++
		st.compiles++
		ent.hash, ent.requires = r.hash, r.requires
		st.dropPending(ent)
		if r.err != nil {
			ent.err, ent.errAt = r.err.Error(), st.e.clock.Now()
			st.e.log.Error("job file not loaded", "file", ent.path, "err", r.err, "active", ent.cur != nil)
			continue
		}
		ent.gens++
		ent.pending = &generation{id: ent.gens, path: r.path, file: r.file, host: r.host, hash: r.hash}
		r.host.st = st
	}
	var gone []*fileEntry
	for path, ent := range st.files {
		if !b.present[path] {
			gone = append(gone, ent)
		}
	}
	accepted := st.checkNames(b.present)
	if len(gone) == 0 && len(accepted) == 0 {
		return
	}
	// Jobs entering in this scan keep their state if their condition is
	// the same, whichever file they come from.
	keep := map[string]bool{}
	for _, ent := range accepted {
		for _, lj := range ent.pending.file.Jobs {
			keep[lj.Name] = true
		}
	}
	sort.Slice(gone, func(a, b int) bool { return gone[a].path < gone[b].path })
	for _, ent := range gone {
		st.unloadFile(ent, keep)
	}
	for _, ent := range accepted {
		ent.hookErr, ent.hookAt = "", time.Time{} // this swap's hooks report anew
		if ent.cur != nil {
			st.retire(ent, ent.cur, keep)
		}
	}
	for _, ent := range accepted {
		g := ent.pending
		ent.pending = nil
		g.loadedAt = st.e.clock.Now()
		st.step.loaded = append(st.step.loaded, ent)
		st.swap(ent, g)
		ent.err, ent.errAt = "", time.Time{}
		st.e.log.Info("job file loaded", "file", ent.path, "generation", g.id, "jobs", len(g.jobs))
	}
	for path, ent := range st.files {
		if !b.present[path] && ent.cur == nil && len(ent.old) == 0 {
			delete(st.files, path)
		}
	}
}

// checkNames checks the job names of the new whole set of files: each
// present file's waiting version, or else its active one. A waiting version
// whose names clash with another file's candidate is refused (of two new
// ones, that of the later path), which puts the older version back in the
// set, so the check repeats until the set is consistent; it ends, at worst,
// with the versions active now, which are. It returns the waiting versions
// that passed, in path order.
func (st *state) checkNames(present map[string]bool) []*fileEntry {
	var ents []*fileEntry
	for path, ent := range st.files {
		if present[path] {
			ents = append(ents, ent)
		}
	}
	sort.Slice(ents, func(a, b int) bool { return ents[a].path < ents[b].path })
	refused := map[*fileEntry]string{}
	candidate := func(ent *fileEntry) *generation {
		if ent.pending != nil {
			if _, no := refused[ent]; !no {
				return ent.pending
			}
		}
		return ent.cur
	}
check:
	for {
		type use struct {
			ent *fileEntry
			job *luaapi.Job
		}
		owner := map[string]use{}
		for _, ent := range ents {
			g := candidate(ent)
			if g == nil {
				continue
			}
			for _, lj := range g.file.Jobs {
				other, taken := owner[lj.Name]
				if !taken {
					owner[lj.Name] = use{ent, lj}
					continue
				}
				// The later file's new version gives way; an active
				// version never does.
				loser, job, with, withEnt := ent, lj, other.job, other.ent
				if ent.pending == nil || candidate(ent) != ent.pending {
					loser, job, with, withEnt = other.ent, other.job, lj, ent
				}
				if loser.pending != nil && candidate(loser) == loser.pending {
					refused[loser] = (&luaapi.LoadError{Path: loser.path, Line: job.Line,
						Msg: fmt.Sprintf("job name %q is already used by %s:%d", job.Name, withEnt.path, with.Line)}).Error()
					continue check // the set changed: check it again
				}
			}
		}
		break
	}
	var accepted []*fileEntry
	for _, ent := range ents {
		if ent.pending == nil {
			continue
		}
		if msg, no := refused[ent]; no {
			if ent.err != msg {
				ent.err, ent.errAt = msg, st.e.clock.Now()
				st.e.log.Error("job file not loaded", "file", ent.path, "err", msg, "active", ent.cur != nil)
			}
			continue
		}
		accepted = append(accepted, ent)
	}
	return accepted
}

// dropPending closes a version that waited for its names and was
// superseded by newer content.
func (st *state) dropPending(ent *fileEntry) {
	if ent.pending != nil {
		ent.pending.file.Close()
		ent.pending = nil
	}
}

// swap makes g the active version of ent's file: the old version's
// on_unload runs and its jobs leave; g's jobs enter with the state of
// same-named jobs whose condition did not change; g's on_load runs; its
// when-jobs are evaluated with reloaded() true.
func (st *state) swap(ent *fileEntry, g *generation) {
	// An every-job that keeps its name and period keeps its next run, so a
	// reload at a boundary neither skips nor repeats it.
	carried := ent.carried
	ent.carried = nil
	var whens []*job
	for _, lj := range g.file.Jobs {
		j := &job{lj: lj, gen: g, name: lj.Name, heapIdx: -1}
		g.jobs = append(g.jobs, j)
		st.jobs[j.name] = j
		if j.isWhen() {
			if s := st.states[j.name]; s != nil && s.Cond != lj.Cond && hasEval(s) {
				st.putState(j.name, s.KeepRuns())
			}
			j.reloadPending = true
			st.indexJob(j)
			st.armHold(j)
			whens = append(whens, j)
		} else {
			if s := st.states[j.name]; s != nil && hasEval(s) {
				st.putState(j.name, s.KeepRuns()) // it was a when-job
			}
			st.scheduleJob(j, carried[j.name+"\x00"+lj.Schedule()+"\x00"+lj.ZoneName()])
		}
		st.watchSilence(j)
	}
	ent.cur = g
	g.host.release()
	err := g.file.CallOnLoad()
	st.mayHaveChanged(g)
	if err != nil {
		st.hookFailed(ent, "on_load", err)
	}
	if len(whens) > 0 {
		st.step.evalQueue = append(st.step.evalQueue, evalBatch{whens, st.loadTrigger(ent.path)})
	}
}

// hasEval tells whether s holds a when-job's evaluation state, besides
// the last success and alarm that jobs of every kind keep.
func hasEval(s *whenlua.JobState) bool { return s.Cond != "" || s.Evaluated }

// retire takes a version's jobs out of service; its state closes once its
// last run has ended. Jobs not in keep lose their evaluation state. The
// next runs of its every-jobs are kept for the version that replaces it.
func (st *state) retire(ent *fileEntry, g *generation, keep map[string]bool) {
	for _, j := range g.jobs {
		if !j.isWhen() && !j.nextRun.IsZero() {
			if ent.carried == nil {
				ent.carried = map[string]pendingFiring{}
			}
			ent.carried[j.name+"\x00"+j.lj.Schedule()+"\x00"+j.lj.ZoneName()] = pendingFiring{j.nextRun, j.slot}
		}
	}
	if err := g.file.CallOnUnload(); err != nil {
		st.hookFailed(ent, "on_unload", err)
	}
	for _, j := range g.jobs {
		if st.jobs[j.name] == j {
			delete(st.jobs, j.name)
		}
		if j.isWhen() {
			st.unindexJob(j)
		} else {
			st.sched.remove(j)
		}
		if !keep[j.name] {
			// The job leaves: its state, alarm and metrics go with it.
			if st.states[j.name] != nil {
				st.putState(j.name, nil)
			}
			st.unwatchSilence(j.name)
			st.e.metrics.forgetJob(j.name)
			st.jobLeft(j.name)
		}
		delete(st.condErrs, j.name)
	}
	g.retired = true
	if ent.cur == g {
		ent.cur = nil
	}
	if g.runs == 0 {
		st.closeGeneration(g)
	} else {
		ent.old = append(ent.old, g)
	}
}

// hookFailed logs a failed on_load or on_unload and keeps it for status.
func (st *state) hookFailed(ent *fileEntry, hook string, err error) {
	st.e.log.Error(hook+" failed", "file", ent.path, "err", err)
	ent.hookErr, ent.hookAt = hook+": "+err.Error(), st.e.clock.Now()
}

// closeGeneration closes a retired version's Lua state.
func (st *state) closeGeneration(g *generation) {
	if g.closed {
		return
	}
	g.closed = true
	g.file.Close()
	if ent := st.files[g.path]; ent != nil {
		for i, o := range ent.old {
			if o == g {
				ent.old = append(ent.old[:i], ent.old[i+1:]...)
				break
			}
		}
	}
	st.e.log.Debug("job file version closed", "file", g.path, "generation", g.id)
}

// unloadFile retires a removed file's active version; the jobs in keep
// (entering from another file) keep their evaluation state.
func (st *state) unloadFile(ent *fileEntry, keep map[string]bool) {
	st.dropPending(ent)
	if ent.cur != nil {
		st.retire(ent, ent.cur, keep)
		st.e.log.Info("job file unloaded", "file", ent.path)
	}
	ent.err, ent.hash, ent.carried = "", "", nil
}

// shutdown runs every active version's on_unload and closes every state.
func (st *state) shutdown() {
	for _, ent := range st.files {
		if ent.cur != nil {
			if err := ent.cur.file.CallOnUnload(); err != nil {
				st.e.log.Error("on_unload failed", "file", ent.path, "err", err)
			}
		}
	}
	st.flush()
	for _, ent := range st.files {
		for _, g := range append(ent.old, ent.cur, ent.pending) {
			if g != nil && !g.closed {
				g.closed = true
				g.file.Close()
			}
		}
	}
}

// fileStatus reports the load state of every known file.
func (st *state) fileStatus() []whenlua.FileStatus {
	out := make([]whenlua.FileStatus, 0, len(st.files))
	for _, ent := range st.files {
		if ent.cur == nil && ent.err == "" {
			continue // removed; kept only while runs of its old versions go on
		}
		fs := whenlua.FileStatus{Path: ent.path, Error: ent.err, ErrorAt: ent.errAt, HookError: ent.hookErr, HookErrorAt: ent.hookAt,
			Compiles: ent.compiles, Requires: ent.allRequires()}
		if g := ent.cur; g != nil {
			fs.LoadedAt, fs.Hash, fs.Generation, fs.Jobs = g.loadedAt, g.hash, g.id, len(g.jobs)
		}
		for _, g := range ent.old {
			fs.OldRuns += g.runs
		}
		out = append(out, fs)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Path < out[b].Path })
	return out
}
