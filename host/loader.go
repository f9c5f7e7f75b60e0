package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/luaapi"
)

// loader reads, compiles and runs the top level of changed job files off
// the engine goroutine, so that a slow or runaway file never holds up a set
// (DESIGN "Loading off the engine"). One scan runs at a time, on the
// goroutine that asked for it (the watcher's, a reload request's, or
// Open's). Each Lua state it builds belongs to that goroutine until the
// scan's batch is handed to the engine as a request on its channel; from
// then on only the engine goroutine touches it. The engine checks the job
// names of the whole new set of files and swaps (state.applyLoad).
type loader struct {
	e *Engine

	mu     sync.Mutex          // one scan at a time; guards the fields below
	seen   map[string]seenFile // job file path -> what the last scan examined
	failed map[string]bool     // job files whose last load failed
	lib    map[string]string   // lib module path -> content hash; nil before the first scan

	staleMu sync.Mutex
	stale   map[string]bool // files the engine asks to load again
}

type seenFile struct {
	stat fileStat
	hash string
}

// loadResult is the outcome of loading one changed job file.
type loadResult struct {
	path     string
	hash     string
	file     *luaapi.File // nil when err is set
	host     *fileHost
	err      error
	requires []string
}

// loadBatch is what one scan found: the job files present and the results
// of loading those whose content changed.
type loadBatch struct {
	present map[string]bool
	results []*loadResult
}

// close releases the states of a batch the engine never took.
func (b *loadBatch) close() {
	for _, r := range b.results {
		if r.file != nil {
			r.file.Close()
		}
	}
}

func newLoader(e *Engine) *loader {
	return &loader{e: e, seen: map[string]seenFile{}, failed: map[string]bool{}, stale: map[string]bool{}}
}

// markStale asks the next scan to load path again even if its content did
// not change (its last load was undone). Any goroutine.
func (l *loader) markStale(path string) {
	l.staleMu.Lock()
	l.stale[path] = true
	l.staleMu.Unlock()
}

func (l *loader) takeStale() map[string]bool {
	l.staleMu.Lock()
	defer l.staleMu.Unlock()
	s := l.stale
	l.stale = map[string]bool{}
	return s
}

// loaderHooks is how a scan reaches the live state: on the engine goroutine
// through requests, or directly while the engine does not run yet (Open).
type loaderHooks struct {
	get      func(name string) whenlua.Value // a variable's current value
	requires func() map[string][]string      // each job file's required modules
}

// scan lists the jobs directory and loads every job file whose content
// changed since the last scan, or that must load again because a lib
// module it required changed (or, after a failed load, any module did), or
// that force names (`whenlua reload --force`). l.mu is held.
func (l *loader) scan(h loaderHooks, fs forceSet) *loadBatch {
	dir := l.e.opts.Paths.JobsDir
	b := &loadBatch{present: map[string]bool{}}
	libChanged := l.scanLib()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		l.e.log.Error("read jobs directory", "dir", dir, "err", err)
		// Unreadable is not empty: keep every file as it is.
		for path := range l.seen {
			b.present[path] = true
		}
		return b
	}
	var paths []string
	stats := map[string]os.FileInfo{}
	for _, de := range entries {
		if !IsJobFile(de.Name()) {
			continue
		}
		path := filepath.Join(dir, de.Name())
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			b.present[path] = true
			stats[path] = fi
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	for path := range l.seen {
		if !b.present[path] {
			delete(l.seen, path)
			delete(l.failed, path)
		}
	}
	var reqs map[string][]string
	if len(libChanged) > 0 {
		reqs = h.requires()
	}
	stale := l.takeStale()
	for _, path := range paths {
		force := stale[path] || fs.has(path) || len(libChanged) > 0 && (l.failed[path] || requiresAny(reqs[path], libChanged))
		if r := l.examine(path, stats[path], force, h); r != nil {
			b.results = append(b.results, r)
		}
	}
	return b
}

// examine loads path when its content changed since the last scan, or when
// force is set. A touch (same content) costs a stat and, at most, a hash.
func (l *loader) examine(path string, fi os.FileInfo, force bool, h loaderHooks) *loadResult {
	s := statOf(fi)
	prev, known := l.seen[path]
	if known && s == prev.stat && !force {
		return nil
	}
	src, err := luaapi.ReadSource(path) // never a FIFO, a device or a file past the cap
	var refused *luaapi.LoadError
	if errors.As(err, &refused) { // a load error that status shows
		l.seen[path] = seenFile{stat: s}
		l.failed[path] = true
		return &loadResult{path: path, err: err}
	}
	if err != nil {
		l.e.log.Error("read job file", "file", path, "err", err)
		return nil
	}
	hash := hashOf(src)
	l.seen[path] = seenFile{stat: s, hash: hash}
	if known && hash == prev.hash && !force {
		return nil
	}
	r := l.load(path, hash, src, h)
	if r.err != nil {
		l.failed[path] = true
	} else {
		delete(l.failed, path)
	}
	return r
}

// load compiles src and runs its top level in a fresh state.
func (l *loader) load(path, hash string, src []byte, h loaderHooks) *loadResult {
	r := &loadResult{path: path, hash: hash}
	defer luaapi.Loading()() // the compile's allocations are the load's too
	compiled, err := luaapi.Compile(path, src)
	if err != nil {
		r.err = err
		return r
	}
	r.host = &fileHost{st: l.e.st, path: path, loading: true, get: h.get}
	f, err := luaapi.Load(path, src, compiled, luaapi.Options{
		LibDir:      l.e.opts.Paths.LibDir,
		Timeout:     l.e.opts.LuaTimeout,
		MemoryLimit: l.e.opts.LuaMemoryLimit,
		Host:        r.host,
	})
	if err != nil {
		var le *luaapi.LoadError
		if errors.As(err, &le) {
			r.requires = le.Requires
		}
		r.err = err
		return r
	}
	r.file, r.requires = f, f.Requires
	return r
}

// scanLib hashes the modules of jobs/lib and returns the paths whose
// content changed (appeared, changed or vanished) since the last scan.
func (l *loader) scanLib() map[string]bool {
	dir := l.e.opts.Paths.LibDir
	changed := map[string]bool{}
	now := map[string]string{}
	entries, _ := os.ReadDir(dir)
	for _, de := range entries {
		if !strings.HasSuffix(de.Name(), ".lua") {
			continue
		}
		path := filepath.Join(dir, de.Name())
		src, err := luaapi.ReadSource(path) // never a FIFO or a device
		if err != nil {
			continue
		}
		now[path] = hashOf(src)
	}
	if l.lib != nil {
		for p, h := range now {
			if l.lib[p] != h {
				changed[p] = true
			}
		}
		for p := range l.lib {
			if _, ok := now[p]; !ok {
				changed[p] = true
			}
		}
	}
	l.lib = now
	return changed
}

func requiresAny(reqs []string, changed map[string]bool) bool {
	for _, r := range reqs {
		if changed[r] {
			return true
		}
	}
	return false
}

// loadFiles scans the jobs directory off the engine goroutine and hands
// what changed (and what fs forces) to the engine, which checks and swaps.
// It returns once the engine has applied the batch (or the engine stopped).
// cause is the trigger kind of the evaluations the loads make.
func (e *Engine) loadFiles(ctx context.Context, fs forceSet, cause string) error {
	l := e.loader
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.scan(loaderHooks{
		get: func(name string) whenlua.Value {
			var v whenlua.Value
			e.query(func() { v = e.st.vars[name] })
			return v
		},
		requires: func() map[string][]string {
			var m map[string][]string
			e.query(func() { m = e.st.requiresByFile() })
			return m
		},
	}, fs)
	err := e.do(ctx, func() {
		e.st.loadCause = cause
		defer func() { e.st.loadCause = "" }()
		e.st.applyLoad(b)
	})
	if err != nil {
		// The engine never took the batch: forget what it found, so that
		// the next scan loads it again.
		b.close()
		for _, r := range b.results {
			delete(l.seen, r.path)
		}
	}
	return err
}

// query runs f on the engine goroutine and waits for it, without waiting
// for the step's commit: for reads only. It does nothing once the engine
// has stopped.
func (e *Engine) query(f func()) {
	ran := make(chan struct{})
	select {
	case e.reqs <- func() { f(); close(ran) }:
	case <-e.done:
		return
	}
	select {
	case <-ran:
	case <-e.done:
	}
}

// requiresByFile returns the lib modules each job file required: while its
// last load attempt ran, and since, by its active or waiting version.
func (st *state) requiresByFile() map[string][]string {
	m := make(map[string][]string, len(st.files))
	for path, ent := range st.files {
		m[path] = ent.allRequires()
	}
	return m
}

// allRequires is the union of the modules of the last load attempt and
// those required by the active and waiting versions at any time.
func (ent *fileEntry) allRequires() []string {
	out := slices.Clone(ent.requires)
	for _, g := range []*generation{ent.cur, ent.pending} {
		if g == nil {
			continue
		}
		for _, r := range g.file.Required() {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	sort.Strings(out)
	return out
}
