package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/whenlua/whenlua"
)

// watcher turns file events in the jobs directory and jobs/lib into rescans
// of the engine: events are debounced, and a slow poll catches what events
// miss (a removed and recreated directory, filesystems without events).
// The engine's scan decides what changed, so a burst of events from one
// editor save gives one reload.
type watcher struct {
	e       *Engine
	fsw     *fsnotify.Watcher // nil when events are unavailable
	stop    chan struct{}
	stopped chan struct{}
	// targets are the files symlinked job files point to, and targetDirs
	// the directories watched for them. Only the run goroutine uses them.
	targets    map[string]bool
	targetDirs map[string]bool
}

func newWatcher(e *Engine) (*watcher, error) {
	w := &watcher{e: e, stop: make(chan struct{}), stopped: make(chan struct{}), targets: map[string]bool{}, targetDirs: map[string]bool{}}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return w, err
	}
	w.fsw = fsw
	w.addDirs()
	return w, nil
}

// addDirs (re)adds the watched directories; a missing one is added by a
// later poll once it exists.
func (w *watcher) addDirs() {
	if w.fsw == nil {
		return
	}
	watched := map[string]bool{}
	for _, p := range w.fsw.WatchList() {
		watched[p] = true
	}
	// The parent is watched too, so that a removed and recreated jobs
	// directory is noticed at once rather than at the next poll.
	dirs := []string{filepath.Dir(w.e.opts.Paths.JobsDir), w.e.opts.Paths.JobsDir, w.e.opts.Paths.LibDir}
	// A symlinked job file changes where its target is: watch the
	// target's directory too, for events on the target only.
	targets, targetDirs := map[string]bool{}, map[string]bool{}
	for _, dir := range []string{w.e.opts.Paths.JobsDir, w.e.opts.Paths.LibDir} {
		entries, _ := os.ReadDir(dir)
		for _, de := range entries {
			if de.Type()&os.ModeSymlink == 0 || !strings.HasSuffix(de.Name(), ".lua") {
				continue
			}
			link := filepath.Join(dir, de.Name())
			for _, t := range linkTargets(link) {
				targets[t] = true
				if d := filepath.Dir(t); d != w.e.opts.Paths.JobsDir && d != w.e.opts.Paths.LibDir {
					targetDirs[d] = true
				}
			}
		}
	}
	for d := range w.targetDirs {
		if !targetDirs[d] && watched[d] {
			w.fsw.Remove(d)
			delete(watched, d)
		}
	}
	w.targets, w.targetDirs = targets, targetDirs
	for d := range targetDirs {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		if watched[dir] {
			continue
		}
		if err := w.fsw.Add(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.e.log.Warn("watch directory", "dir", dir, "err", err)
		}
	}
}

// linkTargets returns each file a chain of symlinks starting at link
// passes through, the last one included (even when it does not exist: a
// dangling link is loaded once its target appears).
func linkTargets(link string) []string {
	var out []string
	for range 40 { // the kernel's own bound on a chain
		t, err := os.Readlink(link)
		if err != nil {
			break
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(link), t)
		}
		out = append(out, filepath.Clean(t))
		link = t
	}
	return out
}

// counts reports whether an event on name may change what loads: a job
// file, the jobs or lib directory itself, a module in lib, or the target of
// a symlinked job file. Anything else in those directories (a log file
// appended to every second) must not hold the debounce off.
func (w *watcher) counts(name string) bool {
	p := w.e.opts.Paths
	switch dir := filepath.Dir(name); {
	case name == p.JobsDir || name == p.LibDir:
		return true
	case dir == p.JobsDir:
		return IsJobFile(filepath.Base(name))
	case dir == p.LibDir:
		return strings.HasSuffix(name, ".lua")
	default:
		return w.targets[name]
	}
}

// maxDebounceDelay bounds how long a stream of events delays a scan.
const maxDebounceDelay = 2 * time.Second

func (w *watcher) run() {
	defer close(w.stopped)
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fsw != nil {
		events, errs = w.fsw.Events, w.fsw.Errors
		defer w.fsw.Close()
	}
	poll := time.NewTicker(w.e.opts.PollEvery)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	var first time.Time // the first event not scanned yet
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 && (ev.Name == w.e.opts.Paths.JobsDir || ev.Name == w.e.opts.Paths.LibDir) {
				// The directory itself went away: re-add it at the next poll.
				w.fsw.Remove(ev.Name)
			}
			if !w.counts(ev.Name) {
				continue
			}
			if first.IsZero() {
				first = time.Now()
			}
			// Events that keep coming (an editor saving every 100 ms) delay
			// the scan by at most maxDebounceDelay.
			debounce.Reset(max(min(w.e.opts.Debounce, time.Until(first.Add(maxDebounceDelay))), 0))
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow loses events: rescan everything.
			w.e.log.Warn("file events", "err", err)
			debounce.Reset(w.e.opts.Debounce)
		case <-debounce.C:
			first = time.Time{}
			w.addDirs()
			w.rescan()
		case <-poll.C:
			w.addDirs()
			w.rescan()
		}
	}
}

// rescan loads what changed, on this goroutine, and waits for the engine
// to swap it in.
func (w *watcher) rescan() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := w.e.loadFiles(ctx, forceSet{}, whenlua.TriggerLoad); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrStopped) {
		w.e.log.Warn("rescan", "err", err)
	}
}

func (w *watcher) close() {
	close(w.stop)
	<-w.stopped
}
