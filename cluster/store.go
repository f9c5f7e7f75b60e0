// Package cluster runs whenlua as a cluster of daemons on etcd. Its Store
// is whenlua.Store on etcd: variables with their version history, when-job
// states, run records with their stored output, and the JOBSERIAL counter,
// all under the key prefix /whenlua/<cluster>/ (store_keys.go has the
// layout, docs/cluster.md the reasons).
//
// One writer commits at a time: every commit is fenced by a caller's
// condition (the leader passes its election key's revision), so a deposed
// writer stores nothing, and checked against the head key that every
// commit rewrites, so a writer whose view is stale reloads it first. A
// batch too large for one etcd transaction is written to a journal first,
// marked committed in one transaction, then applied; readers see a
// committed journal entry as if applied.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultHistoryKeep   = whenlua.DefaultHistoryKeep
	DefaultRunsKeep      = whenlua.DefaultRunsKeep
	DefaultMaintainEvery = 10 * time.Minute
	DefaultDefragEvery   = time.Hour
	DefaultDefragMinFree = 64 << 20
	DefaultCallTimeout   = 30 * time.Second
	DefaultCluster       = "default"
)

// Errors of the store.
var (
	// ErrNotLeader is wrapped by Commit and Trim when the fence does not
	// hold: the caller is not the writer any more, and nothing was stored.
	ErrNotLeader = errors.New("not the leader")
	// ErrOutcomeUnknown is wrapped by Commit when etcd failed and could not
	// be asked whether the commit was stored; the caller must read the
	// store again before it trusts what it holds in memory.
	ErrOutcomeUnknown = whenlua.ErrOutcomeUnknown
)

// Options configure a Store. Retention means what it means for persist.
type Options struct {
	// Client is the etcd client; the caller owns it and closes it after
	// the store.
	Client *clientv3.Client
	// Cluster names the cluster: its keys live under /whenlua/<Cluster>/
	// ("": DefaultCluster).
	Cluster string
	// Fence, when set, returns the conditions under which a write may take
	// effect (the leader's: its election key's create revision unchanged);
	// called for every write. A write whose fence fails stores nothing and
	// returns an error wrapping ErrNotLeader.
	Fence func() []clientv3.Cmp
	// HistoryKeep is how many versions are kept per variable (0: 1000).
	// Each commit holds the bound; the newest version is never trimmed.
	HistoryKeep int
	// HistoryMaxAge trims versions older than this in Trim (0: no age
	// limit). The newest version of a variable is never trimmed.
	HistoryMaxAge time.Duration
	// RunsKeep is how many run records are kept (0: 10000), the oldest
	// trimmed first; a run in state running or queued is never trimmed.
	RunsKeep int
	// MaintainEvery is the period of the background Trim, compaction and
	// defragmentation (0: 10 minutes; negative: none).
	MaintainEvery time.Duration
	// DefragEvery is the least time between two defragmentations (0: one
	// hour); DefragMinFree is the free space in a member's database below
	// which it is not defragmented (0: 64 MiB).
	DefragEvery   time.Duration
	DefragMinFree int64
	// CallTimeout bounds each call to etcd (0: 30 s).
	CallTimeout time.Duration
	// Logger receives the store's messages (nil: slog.Default()).
	Logger *slog.Logger
	// Now gives the time of a version committed without one, and the
	// present for the age limit (nil: time.Now).
	Now func() time.Time

	// maxOps and maxBytes bound one transaction (tests lower them).
	maxOps   int
	maxBytes int
	// fault, in tests, injects an error at a point of a write: "send"
	// (the request is lost), "reply" (the reply is lost, after a single
	// transaction or a journal step's marker), "marker" (the writer stops
	// before a journal step's marker), "apply" (after it), "void" (the
	// void write that settles a lost one is lost). ops are the write's key
	// operations (nil at "void").
	fault func(point string, ops []kvOp) error
	// afterPass, in tests, is called after each maintenance pass.
	afterPass func(error)
}

// Store is whenlua.Store on etcd. Its methods are safe for concurrent use;
// reads go to etcd directly, writes are serialized.
type Store struct {
	opts   Options
	log    *slog.Logger
	cli    *clientv3.Client
	k      keys
	closed chan struct{} // closed by Close

	// writeMu serializes the writers (Commit, Trim, the journal's apply)
	// and guards the writer's view below.
	writeMu sync.Mutex
	view    writerView

	cancel context.CancelFunc
	done   chan struct{} // closed when the maintenance goroutine returned

	closeOnce sync.Once
}

var (
	_ whenlua.Store          = (*Store)(nil)
	_ whenlua.HistoryScanner = (*Store)(nil)
)

// Open returns a store on opts.Client and starts its maintenance goroutine
// unless opts.MaintainEvery is negative. It checks that etcd answers and
// applies a committed journal entry left by a writer that stopped.
func Open(opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("open cluster store: no etcd client")
	}
	if opts.Cluster == "" {
		opts.Cluster = DefaultCluster
	}
	if err := ValidateClusterName(opts.Cluster); err != nil {
		return nil, fmt.Errorf("open cluster store: %w", err)
	}
	if opts.HistoryKeep <= 0 {
		opts.HistoryKeep = DefaultHistoryKeep
	}
	if opts.RunsKeep <= 0 {
		opts.RunsKeep = DefaultRunsKeep
	}
	if opts.HistoryMaxAge < 0 {
		opts.HistoryMaxAge = 0
	}
	if opts.MaintainEvery == 0 {
		opts.MaintainEvery = DefaultMaintainEvery
	}
	if opts.DefragEvery <= 0 {
		opts.DefragEvery = DefaultDefragEvery
	}
	if opts.DefragMinFree <= 0 {
		opts.DefragMinFree = DefaultDefragMinFree
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.maxOps <= 0 {
		opts.maxOps = maxTxnOps
	}
	if opts.maxBytes <= 0 {
		opts.maxBytes = maxTxnBytes
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		opts:   opts,
		log:    opts.Logger,
		cli:    opts.Client,
		k:      newKeys(opts.Cluster),
		closed: make(chan struct{}),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	if err := s.rollForward(); err != nil {
		cancel()
		return nil, fmt.Errorf("open cluster store %s: %w", opts.Cluster, err)
	}
	if opts.MaintainEvery > 0 {
		go s.maintain(ctx, opts.MaintainEvery)
	} else {
		close(s.done)
	}
	return s, nil
}

// ValidateClusterName checks a cluster name, one segment of a key, as a
// node name is checked: 1 to 64 letters, digits, '-', '_' and '.'.
func ValidateClusterName(name string) error {
	if err := whenlua.ValidateNodeName(name); err != nil && name != whenlua.OnAny && name != whenlua.OnLeader {
		return fmt.Errorf("%w: cluster name %q: want 1 to 64 letters, digits, '-', '_' or '.'", whenlua.ErrInvalid, name)
	}
	return nil
}

// Prefix is the key prefix of the store's keys: /whenlua/<cluster>/.
func (s *Store) Prefix() string { return s.k.root }

// Close stops the maintenance goroutine and waits for it; every later
// call fails with whenlua.ErrStoreClosed. The etcd client stays open.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.cancel()
		<-s.done
		// Wait for a write in progress.
		s.writeMu.Lock()
		s.view = writerView{}
		s.writeMu.Unlock()
	})
	return nil
}

// enter fails once the store is closed.
func (s *Store) enter() error {
	select {
	case <-s.closed:
		return whenlua.ErrStoreClosed
	default:
		return nil
	}
}

// ctx returns a context for one call to etcd, bounded by CallTimeout.
func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.CallTimeout)
}

// fence returns the caller's fence conditions.
func (s *Store) fence() []clientv3.Cmp {
	if s.opts.Fence == nil {
		return nil
	}
	return s.opts.Fence()
}
