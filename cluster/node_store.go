package cluster

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
)

// openStore opens the cluster's store for this node's term as leader:
// every write fenced by fence, the leader's election key unchanged.
func (n *Node) openStore(fence clientv3.Cmp) (whenlua.Store, error) {
	so := n.opts.Store
	so.Client, so.Cluster, so.Logger = n.cli, n.opts.Cluster, n.log.With("part", "store")
	so.Fence = func() []clientv3.Cmp { return []clientv3.Cmp{fence} }
	return Open(so)
}
