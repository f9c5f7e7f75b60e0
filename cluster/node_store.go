package cluster

import (
	"errors"

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
	return termStore{Store: s, unknown: unknown}, nil
}

// termStore is the store of one term as leader.
type termStore struct {
	*Store
	unknown func()
}

func (s termStore) Commit(b *whenlua.Batch) error {
	err := s.Store.Commit(b)
	if errors.Is(err, ErrOutcomeUnknown) {
		s.unknown()
	}
	return err
}
