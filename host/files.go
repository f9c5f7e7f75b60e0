package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/luaapi"
)

// fileEntry is what the engine knows of one job file path.
type fileEntry struct {
	path     string
	cur      *generation   // the active version; nil when none ever loaded
	old      []*generation // replaced versions whose runs are still going
	seen     fileStat      // the disk state of the content last examined
	hash     string        // hash of the content last examined (loaded or not)
	err      string        // load error of that content, "" when it is active
	errAt    time.Time
	hookErr  string // last on_load/on_unload error of the file
	hookAt   time.Time
	compiles uint64
	gens     uint64
	requires []string // lib modules the last load attempt required
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
func IsJobFile(name string) bool {
	return strings.HasSuffix(name, ".lua") && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "#")
}

// scan compares the jobs directory with what is loaded and loads, reloads or
// unloads what differs. A file whose content did not change (a touch) is
// left alone; a change in a lib module reloads the files that required it.
func (st *state) scan() {
	dir := st.e.opts.Paths.JobsDir
	libChanged := st.scanLib()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		st.e.log.Error("read jobs directory", "dir", dir, "err", err)
		return
	}
	present := map[string]os.FileInfo{}
	var paths []string
	for _, de := range entries {
		if !IsJobFile(de.Name()) {
			continue
		}
		path := filepath.Join(dir, de.Name())
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			present[path] = fi
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	// Removals first, so that a new file may take the job names of one
	// that went away in the same scan.
	namesFreed := false
	for path, ent := range st.files {
		if _, ok := present[path]; !ok && (ent.cur != nil || ent.err != "") {
			namesFreed = namesFreed || ent.cur != nil
			st.unloadFile(ent)
		}
	}
	for path, ent := range st.files {
		if _, ok := present[path]; !ok && ent.cur == nil && len(ent.old) == 0 {
			delete(st.files, path)
		}
	}
	tried := map[string]bool{}
	for _, path := range paths {
		ent := st.files[path]
		if ent == nil {
			ent = &fileEntry{path: path}
			st.files[path] = ent
		}
		force := ent.err != "" && len(libChanged) > 0 || requiresAny(ent.requires, libChanged) || st.force.has(path)
		if st.examine(ent, present[path], force) {
			tried[path] = true
			namesFreed = namesFreed || ent.err == ""
		}
	}
	// A file refused for a job name another file used may load now that
	// the other file is gone or changed.
	if namesFreed {
		for _, path := range paths {
			if ent := st.files[path]; !tried[path] && ent.err != "" {
				st.examine(ent, present[path], true)
			}
		}
	}
}

// examine loads ent's file when its content changed since it was last
// examined, or when force is set, and reports whether it tried to load it.
// A touch (same content) costs a stat and, at most, a hash.
func (st *state) examine(ent *fileEntry, fi os.FileInfo, force bool) bool {
	s := statOf(fi)
	if s == ent.seen && !force {
		return false
	}
	src, err := os.ReadFile(ent.path)
	if err != nil {
		st.e.log.Error("read job file", "file", ent.path, "err", err)
		return false
	}
	ent.seen = s
	h := hashOf(src)
	if h == ent.hash && !force {
		return false
	}
	ent.hash = h
	st.load(ent, src)
	return true
}

func requiresAny(reqs []string, changed map[string]bool) bool {
	for _, r := range reqs {
		if changed[r] {
			return true
		}
	}
	return false
}

// scanLib hashes the modules of jobs/lib and returns the paths whose
// content changed (appeared, changed or vanished) since the last scan.
func (st *state) scanLib() map[string]bool {
	dir := st.e.opts.Paths.LibDir
	changed := map[string]bool{}
	now := map[string]string{}
	entries, _ := os.ReadDir(dir)
	for _, de := range entries {
		if !strings.HasSuffix(de.Name(), ".lua") {
			continue
		}
		path := filepath.Join(dir, de.Name())
		src, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		now[path] = hashOf(src)
	}
	if st.lib != nil {
		for p, h := range now {
			if st.lib[p] != h {
				changed[p] = true
			}
		}
		for p := range st.lib {
			if _, ok := now[p]; !ok {
				changed[p] = true
			}
		}
	}
	st.lib = now
	return changed
}

// load compiles src and runs it in a fresh state; only if all of that
// succeeds does the new version replace the active one (load first, swap
// last). On failure the previous version stays active and the error is kept.
func (st *state) load(ent *fileEntry, src []byte) {
	ent.compiles++
	st.compiles++
	fail := func(err error) {
		ent.err, ent.errAt = err.Error(), st.e.clock.Now()
		st.e.log.Error("job file not loaded", "file", ent.path, "err", err, "active", ent.cur != nil)
	}
	proto, err := luaapi.Compile(ent.path, src)
	if err != nil {
		fail(err)
		return
	}
	host := &fileHost{st: st, path: ent.path, loading: true}
	f, err := luaapi.Load(ent.path, src, proto, luaapi.Options{
		LibDir:      st.e.opts.Paths.LibDir,
		Timeout:     st.e.opts.LuaTimeout,
		MemoryLimit: st.e.opts.LuaMemoryLimit,
		Host:        host,
	})
	if f != nil {
		ent.requires = f.Requires
	}
	if err != nil {
		fail(err)
		return
	}
	for _, lj := range f.Jobs {
		if other := st.jobs[lj.Name]; other != nil && other.gen.path != ent.path {
			f.Close()
			fail(&luaapi.LoadError{Path: ent.path, Line: lj.Line,
				Msg: fmt.Sprintf("job name %q is already used by %s:%d", lj.Name, other.gen.path, other.lj.Line)})
			return
		}
	}
	ent.gens++
	st.step.loaded = append(st.step.loaded, ent)
	g := &generation{id: ent.gens, path: ent.path, file: f, host: host, hash: ent.hash, loadedAt: st.e.clock.Now()}
	st.swap(ent, g)
	ent.err, ent.errAt = "", time.Time{}
	st.e.log.Info("job file loaded", "file", ent.path, "generation", g.id, "jobs", len(f.Jobs))
}

// swap makes g the active version of ent's file: the old version's
// on_unload runs and its jobs leave; g's jobs enter with the state of
// same-named jobs whose condition did not change; g's on_load runs; its
// when-jobs are evaluated with reloaded() true.
func (st *state) swap(ent *fileEntry, g *generation) {
	newNames := map[string]bool{}
	for _, lj := range g.file.Jobs {
		newNames[lj.Name] = true
	}
	ent.hookErr, ent.hookAt = "", time.Time{} // this swap's hooks report anew
	// An every-job that keeps its name and period keeps its next run, so a
	// reload at a boundary neither skips nor repeats it.
	carried := map[string]*job{}
	if old := ent.cur; old != nil {
		for _, j := range old.jobs {
			if !j.isWhen() && !j.nextRun.IsZero() {
				carried[j.name+"\x00"+j.lj.Schedule()+"\x00"+j.lj.ZoneName()] = j
			}
		}
		st.retire(ent, old, newNames)
	}
	var whens []*job
	for _, lj := range g.file.Jobs {
		j := &job{lj: lj, gen: g, name: lj.Name, heapIdx: -1}
		g.jobs = append(g.jobs, j)
		st.jobs[j.name] = j
		if j.isWhen() {
			if s := st.states[j.name]; s != nil && s.Cond != lj.Cond {
				st.putState(j.name, nil)
			}
			j.reloadPending = true
			st.indexJob(j)
			st.armHold(j)
			whens = append(whens, j)
		} else {
			if s := st.states[j.name]; s != nil {
				st.putState(j.name, nil)
			}
			st.scheduleJob(j, carried[j.name+"\x00"+lj.Schedule()+"\x00"+lj.ZoneName()])
		}
	}
	ent.cur = g
	g.host.release()
	if err := g.file.CallOnLoad(); err != nil {
		st.hookFailed(ent, "on_load", err)
	}
	if len(whens) > 0 {
		st.step.evalQueue = append(st.step.evalQueue, whens)
	}
}

// retire takes a version's jobs out of service; its state closes once its
// last run has ended. Jobs not in keep lose their evaluation state.
func (st *state) retire(ent *fileEntry, g *generation, keep map[string]bool) {
	if err := g.file.CallOnUnload(); err != nil {
		st.hookFailed(ent, "on_unload", err)
	}
	for _, j := range g.jobs {
		if st.jobs[j.name] == j {
			delete(st.jobs, j.name)
		}
		if j.isWhen() {
			st.unindexJob(j)
			if !keep[j.name] && st.states[j.name] != nil {
				st.putState(j.name, nil)
			}
		} else {
			st.sched.remove(j)
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

// unloadFile retires a removed file's active version.
func (st *state) unloadFile(ent *fileEntry) {
	if ent.cur != nil {
		st.retire(ent, ent.cur, nil)
		st.e.log.Info("job file unloaded", "file", ent.path)
	}
	ent.err, ent.hash, ent.seen = "", "", fileStat{}
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
		for _, g := range append(ent.old, ent.cur) {
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
			Compiles: ent.compiles, Requires: ent.requires}
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
