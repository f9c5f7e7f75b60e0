package cluster

import (
	"errors"
	"fmt"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
)

// openStore opens the cluster's store for this node's term as leader:
// every write fenced by fence, the leader's election key unchanged. When a
// commit's outcome is unknown (etcd failed and could not tell whether it
// was stored), the engine's memory may be behind the store: unknown is
// called, and the node ends its term so that the next leader (maybe this
// node again) starts from what the store holds.
func (n *Node) openStore(fence clientv3.Cmp, unknown func()) (whenlua.Store, error) {
	so := n.opts.Store
	so.Client, so.Cluster, so.Logger = n.cli, n.opts.Cluster, n.log.With("part", "store")
	so.Fence = func() []clientv3.Cmp { return []clientv3.Cmp{fence} }
	s, err := Open(so)
	if err != nil {
		return nil, err
	}
	return termStore{Store: s, unknown: unknown, ended: new(atomic.Bool)}, nil
}

// termStore is the store of one term as leader. Once a commit's outcome is
// unknown, every later commit of the term is refused with ErrNotLeader:
// the engine goes on until it is closed, from memory that may be behind
// the store, and nothing it builds on that memory may be stored (a serial
// taken again, a job state that never saw the stored step).
type termStore struct {
	*Store
	unknown func()
	ended   *atomic.Bool
}

func (s termStore) Commit(b *whenlua.Batch) error {
	if s.ended.Load() {
		return fmt.Errorf("commit: %w: this term ended at a commit of unknown outcome", ErrNotLeader)
	}
	err := s.Store.Commit(b)
	if errors.Is(err, ErrOutcomeUnknown) {
		s.ended.Store(true)
		s.unknown()
	}
	return err
}
