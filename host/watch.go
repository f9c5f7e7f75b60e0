package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
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
}

func newWatcher(e *Engine) (*watcher, error) {
	w := &watcher{e: e, stop: make(chan struct{}), stopped: make(chan struct{})}
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
	for _, dir := range []string{filepath.Dir(w.e.opts.Paths.JobsDir), w.e.opts.Paths.JobsDir, w.e.opts.Paths.LibDir} {
		if watched[dir] {
			continue
		}
		if err := w.fsw.Add(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.e.log.Warn("watch directory", "dir", dir, "err", err)
		}
	}
}

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
			if filepath.Dir(ev.Name) == filepath.Dir(w.e.opts.Paths.JobsDir) && ev.Name != w.e.opts.Paths.JobsDir {
				continue // another entry of the parent directory
			}
			debounce.Reset(w.e.opts.Debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow loses events: rescan everything.
			w.e.log.Warn("file events", "err", err)
			debounce.Reset(w.e.opts.Debounce)
		case <-debounce.C:
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
	if err := w.e.loadFiles(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errStopped) {
		w.e.log.Warn("rescan", "err", err)
	}
}

func (w *watcher) close() {
	close(w.stop)
	<-w.stopped
}
