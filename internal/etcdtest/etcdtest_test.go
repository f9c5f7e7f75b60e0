package etcdtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua/internal/etcdtest"
)

func client(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOneMemberServes(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := client(t, c.Endpoints()...)
	ctx := context.Background()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	r, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v" {
		t.Fatalf("get k: %v", r.Kvs)
	}
}

// A 3-member cluster goes on when its leader is killed, and the killed
// member catches up with what was written without it once restarted.
func TestKilledMemberClusterGoesOn(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := client(t, c.Endpoints()...)
	if _, err := cli.Put(ctx, "before", "1"); err != nil {
		t.Fatal(err)
	}
	dead := c.Leader()
	if dead == nil {
		t.Fatal("no leader")
	}
	dead.Kill()
	if dead.Running() {
		t.Fatal("killed member still running")
	}
	// A put in flight when the leader died may fail (etcd does not retry a
	// write whose outcome is unknown); a put is idempotent, so it is tried
	// again until the two members left have elected a leader.
	for i := range 10 {
		for {
			_, err := cli.Put(ctx, fmt.Sprintf("after/%d", i), "1")
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("put with a member killed: %v", err)
			}
		}
	}
	if err := dead.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	// A linearizable read through the restarted member alone sees every
	// write made while it was down.
	one := client(t, dead.Endpoint())
	r, err := one.Get(ctx, "after/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != 10 {
		t.Fatalf("restarted member sees %d of 10 keys", len(r.Kvs))
	}
}
