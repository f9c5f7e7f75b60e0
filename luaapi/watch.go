package luaapi

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// DefaultMemoryLimit is how much one call into Lua may grow the process's
// live heap when Options.MemoryLimit is 0.
const DefaultMemoryLimit = 256 << 20

// watchEvery is how often a call into Lua is checked against its limits. A
// call that returns sooner costs one timer, as a context deadline would.
const watchEvery = 10 * time.Millisecond

// The causes with which a watch ends a call.
var (
	errTimeLimit   = errors.New("time limit exceeded")
	errMemoryLimit = errors.New("memory limit exceeded")
)

// A watch ends a call into Lua, by cancelling the context the state checks
// before each instruction, once the call has run past its deadline or has
// grown the live heap (measured after each garbage collection) by more than
// its memory limit since the watch's first look, watchEvery into the call.
// Growth within that first interval is not counted: it is bounded by what
// an allocation loop achieves in 10 ms, and it keeps the watch off the path
// of the many calls that return sooner. An instruction is not interrupted:
// one string concatenation may still double a string past the limit. The
// functions that build large values in one call (string.rep) bound their
// results themselves (sandbox.go).
//
// The live heap is the whole process's: the calls into Lua of one engine
// run one at a time, so growth while a call runs is that call's.
type watch struct {
	mu       sync.Mutex // orders the setting of t before look's use of it
	t        *time.Timer
	ctx      context.Context
	cancel   context.CancelCauseFunc
	deadline time.Time
	limit    uint64 // 0: no memory limit
	base     uint64 // the live heap at the first look; set by the timer's function
	looked   bool
}

// startWatch returns the context for one call, limited to timeout and to
// memory bytes of heap growth (none when memory < 0), and its watch.
func startWatch(timeout time.Duration, memory int64) *watch {
	w := &watch{deadline: time.Now().Add(timeout)}
	if memory > 0 {
		w.limit = uint64(memory)
	}
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
	w.mu.Lock()
	w.t = time.AfterFunc(min(watchEvery, timeout), w.look)
	w.mu.Unlock()
	return w
}

// look runs on the timer's goroutine, one look at a time.
func (w *watch) look() {
	if w.ctx.Err() != nil {
		return // the call has returned
	}
	if !time.Now().Before(w.deadline) {
		w.cancel(errTimeLimit)
		return
	}
	if w.limit > 0 {
		live := liveHeap()
		switch {
		case !w.looked:
			w.base, w.looked = live, true
		case live > w.base && live-w.base > w.limit:
			w.cancel(errMemoryLimit)
			return
		}
	}
	w.mu.Lock()
	w.t.Reset(max(min(watchEvery, time.Until(w.deadline)), 0))
	w.mu.Unlock()
}

// stop ends the watch once the call has returned and tells why the call was
// ended: errTimeLimit, errMemoryLimit or nil.
func (w *watch) stop() error {
	w.mu.Lock()
	w.t.Stop()
	w.mu.Unlock()
	cause := context.Cause(w.ctx)
	w.cancel(nil)
	if errors.Is(cause, errMemoryLimit) {
		// The call's garbage may be gigabytes: return it to the system now
		// rather than leave the daemon that large.
		debug.FreeOSMemory()
	}
	if errors.Is(cause, context.Canceled) {
		return nil
	}
	return cause
}

var liveSample = struct {
	sync.Mutex
	s []metrics.Sample
}{s: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}

// liveHeap is the live heap as of the end of the last garbage collection.
func liveHeap() uint64 {
	liveSample.Lock()
	defer liveSample.Unlock()
	metrics.Read(liveSample.s)
	if liveSample.s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return liveSample.s[0].Value.Uint64()
}

// mib formats a size in bytes as MiB where it is a whole number of them.
func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
