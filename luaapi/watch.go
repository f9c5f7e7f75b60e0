package luaapi

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMemoryLimit is how much one call into Lua may grow the process's
// heap when Options.MemoryLimit is 0.
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
// grown the live heap by more than its memory limit. It looks every
// watchEvery, from a timer; the first look is watchEvery into the call, so
// the many calls that return sooner cost one timer.
//
// The live heap is measured by each garbage collection. Growth is counted
// from the first collection to end after the first look, so that nothing
// kept before the call is charged to it, and garbage does not count. A
// collection counts what is allocated while it marks as live, garbage or
// not: growth past the limit stops the call once two collections in a row
// have found it, or at once when it is past twice the limit. A call that
// keeps what it builds stays over the limit.
//
// An instruction is not interrupted, and no collection ends while one
// builds a long string: one expression concatenating many long strings
// builds its whole result before it can be stopped. The functions that
// could build a huge string in one call bound their results themselves
// (sandbox.go).
//
// The heap is the whole process's, and Go cannot tell which goroutine
// grew it. The calls of one engine run one at a time, on its goroutine, but
// a job file's top level (a load) runs on the loader's goroutine beside
// them; loads run one at a time. While a load is in flight growth cannot be
// told apart, and it is charged to the load alone: the load runs code new
// to the daemon, and its watch still stops a hostile file, so running beside
// engine calls does not let it escape its limit. Other calls skip their
// memory checks while a load is in flight, and take a new baseline from a
// first look once none is, so that what a load built or kept is not charged
// to a condition, pre or post that ran beside it. The heap stays bounded: a
// load is charged with everything, and an engine call skips checks only
// while a load (itself under both limits) runs. The cost is the other way
// round: an engine call that grows the heap past the limit beside a load
// fails that load, and what it grew then is not charged to it (its watch
// counts afresh after the load).
//
// A call nested in another (through a Host callback) pauses its caller's
// watch, which takes a new baseline when it resumes: a caller whose nested
// calls come often enough escapes its own limit. The daemon's Host queues
// evaluations instead of nesting them.
type watch struct {
	ctx      context.Context
	cancel   context.CancelCauseFunc
	deadline time.Time
	limit    uint64                       // 0: no memory limit
	load     bool                         // a file's top level: charged with all growth
	read     func() (live, cycles uint64) // readHeap; tests script it

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	paused  int    // calls nested in this one, running
	looked  bool   // the first look is done: cycles is set
	cycles  uint64 // garbage collections completed at the first look
	base    uint64 // the live heap of the first collection after it; 0: none yet
	overAt  uint64 // the collection that first found the growth over the limit; 0: none
	loadGen uint64 // loads.gen when the current baseline's first look was taken
}

// loads tracks the loads in flight in the process: running counts them,
// and gen changes as each starts and ends, so that a watch can tell that a
// load ran between two of its looks.
var loads struct {
	running atomic.Int64
	gen     atomic.Uint64
}

// Loading marks a load of a file as in flight, from its compile to its end,
// until the returned function is called: compiling and building its state
// allocate too, outside the call that runs its top level, and a watch of a
// call beside it must not be charged with that. The daemon wraps each load
// in it.
func Loading() (done func()) {
	loads.running.Add(1)
	loads.gen.Add(1)
	return func() {
		loads.running.Add(-1)
		loads.gen.Add(1)
	}
}

// startWatch returns the context for one call, limited to timeout and to
// memory bytes of heap growth (none when memory < 0), and its watch; load
// tells that the call runs a file's top level.
func startWatch(timeout time.Duration, memory int64, load bool) *watch {
	w := &watch{deadline: time.Now().Add(timeout), read: readHeap, load: load}
	if memory > 0 {
		w.limit = uint64(memory)
	}
	if load {
		loads.running.Add(1)
		loads.gen.Add(1)
	}
	w.loadGen = loads.gen.Load()
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
	w.mu.Lock()
	w.t = time.AfterFunc(min(watchEvery, timeout), w.look)
	w.mu.Unlock()
	return w
}

// look runs on the timer's goroutine, one look at a time.
func (w *watch) look() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if !time.Now().Before(w.deadline) {
		w.cancel(errTimeLimit)
		return
	}
	if w.limit > 0 && w.paused == 0 && w.memoryExceeded() {
		w.cancel(errMemoryLimit)
		return
	}
	w.t.Reset(max(min(watchEvery, time.Until(w.deadline)), 0))
}

// memoryExceeded reports whether the call has grown the live heap past its
// limit; w.mu is held.
func (w *watch) memoryExceeded() bool {
	gen := loads.gen.Load()
	if !w.load && (loads.running.Load() > 0 || gen != w.loadGen) {
		// A load runs or ran since the first look: start again once none does.
		w.looked, w.loadGen = false, gen
		return false
	}
	live, cycles := w.read()
	if !w.load && loads.gen.Load() != gen {
		w.looked = false // a load started while the heap was read
		return false
	}
	switch {
	case !w.looked:
		w.looked, w.cycles, w.base, w.overAt = true, cycles, 0, 0
		return false
	case cycles == w.cycles:
		return false // no collection has ended since the first look
	case w.base == 0:
		w.base = live
		return false
	case live <= w.base || live-w.base <= w.limit:
		w.overAt = 0
		return false
	case live-w.base > 2*w.limit:
		return true
	case w.overAt == 0:
		w.overAt = cycles
	}
	return cycles > w.overAt
}

// pause stops the memory checks while a call nested in this one runs: the
// nested call has its own watch. resume starts them again from a new first
// look, so that what the nested call kept is not charged to this one.
func (w *watch) pause() {
	w.mu.Lock()
	w.paused++
	w.mu.Unlock()
}

func (w *watch) resume() {
	w.mu.Lock()
	w.paused--
	w.looked = false
	w.mu.Unlock()
}

// stop ends the watch once the call has returned and tells why the call was
// ended: errTimeLimit, errMemoryLimit or nil.
func (w *watch) stop() error {
	w.mu.Lock()
	w.stopped = true
	w.t.Stop()
	w.mu.Unlock()
	if w.load {
		loads.running.Add(-1)
		loads.gen.Add(1)
	}
	cause := context.Cause(w.ctx)
	w.cancel(nil)
	if cause == errMemoryLimit {
		// The call's garbage may be gigabytes: return it to the system now
		// rather than leave the daemon that large.
		debug.FreeOSMemory()
	}
	if cause == errTimeLimit || cause == errMemoryLimit {
		return cause
	}
	return nil // the context was only ever cancelled here
}

var heapSample = struct {
	sync.Mutex
	s []metrics.Sample
}{s: []metrics.Sample{
	{Name: "/gc/heap/live:bytes"},
	{Name: "/gc/cycles/total:gc-cycles"},
}}

// readHeap returns the live heap, as of the end of the last garbage
// collection, and the number of collections completed.
func readHeap() (live, cycles uint64) {
	heapSample.Lock()
	defer heapSample.Unlock()
	metrics.Read(heapSample.s)
	v := func(i int) uint64 {
		if heapSample.s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return heapSample.s[i].Value.Uint64()
	}
	return v(0), v(1)
}

// mib formats a size in bytes as MiB where it is a whole number of them.
func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
