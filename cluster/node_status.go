package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
)

// clusterStatus reads the live nodes and the leader from etcd. A node
// whose job files differ from the leader's is flagged.
func (n *Node) clusterStatus(ctx context.Context) (whenlua.ClusterStatus, error) {
	cs := whenlua.ClusterStatus{Name: n.opts.Cluster, Node: n.opts.Node, Endpoints: n.opts.Endpoints}
	resp, err := n.cli.Txn(ctx).Then(
		clientv3.OpGet(n.key("nodes")+"/", clientv3.WithPrefix()),
		clientv3.OpGet(n.key("election")+"/", clientv3.WithFirstCreate()...),
	).Commit()
	if err != nil {
		return cs, fmt.Errorf("read the cluster from etcd: %w", err)
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		var li leaderInfo
		if json.Unmarshal(kvs[0].Value, &li) == nil {
			cs.Leader = li.Node
		}
	}
	var leaderFiles map[string]string
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var rec nodeRecord
		if json.Unmarshal(kv.Value, &rec) != nil {
			continue
		}
		cn := whenlua.ClusterNode{Name: rec.Name, Addr: rec.Addr, PID: rec.PID, Started: rec.Started,
			Leader: rec.Name == cs.Leader, Files: rec.Files}
		if cn.Files == nil {
			cn.Files = map[string]string{}
		}
		if cn.Leader {
			leaderFiles = cn.Files
		}
		cs.Nodes = append(cs.Nodes, cn)
	}
	sort.Slice(cs.Nodes, func(a, b int) bool { return cs.Nodes[a].Name < cs.Nodes[b].Name })
	if leaderFiles != nil {
		for i := range cs.Nodes {
			cs.Nodes[i].Differs = !equalFiles(cs.Nodes[i].Files, leaderFiles)
		}
	}
	return cs, nil
}
