package cluster

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/etcdtest"
)

// BenchmarkSetCommit measures Store.Commit of a typical set step (one
// variable: its version and current value, fenced by an election key)
// beside a raw etcd transaction that puts the same two keys, on a 1- and a
// 3-member etcd on loopback. docs/cluster.md has the figures.
//
//	go test ./cluster -run '^$' -bench SetCommit -benchtime 2000x
func BenchmarkSetCommit(b *testing.B) {
	for _, members := range []int{1, 3} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			c := etcdtest.Start(b, members)
			cli := newClient(b, c.Endpoints())
			b.Run("store", func(b *testing.B) {
				name := fmt.Sprintf("bench%d", clusterSeq.Add(1))
				// The fence a leader passes: its election key unchanged.
				key := "/whenlua/" + name + "/election/1"
				resp, err := cli.Put(context.Background(), key, "node")
				if err != nil {
					b.Fatal(err)
				}
				rev := resp.Header.Revision
				s := openTest(b, Options{Client: cli, Cluster: name, Fence: func() []clientv3.Cmp {
					return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", rev)}
				}})
				commit(b, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(0)}}})
				b.ResetTimer()
				for i := range b.N {
					commit(b, s, &whenlua.Batch{Vars: []whenlua.VarChange{{Name: "x", Value: whenlua.Int(int64(i)), Origin: "cli"}}})
				}
			})
			b.Run("raw-txn", func(b *testing.B) {
				ctx := context.Background()
				val := string(whenlua.Int(1).AppendBinary(nil))
				b.ResetTimer()
				for i := range b.N {
					_, err := cli.Txn(ctx).Then(
						clientv3.OpPut("/raw/v/x", val),
						clientv3.OpPut("/raw/h/x/"+strconv.Itoa(i), val)).Commit()
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
