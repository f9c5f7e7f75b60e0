package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/cluster"
	"github.com/whenlua/whenlua/host"
)

// clusterFlags make the daemon a node of a cluster on etcd; `daemon start`
// and `daemon restart` pass them on to the daemon they start.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "etcd", EnvVars: []string{"WHENLUA_ETCD"},
			Usage: "join a cluster on etcd at `URLS` (its client endpoints, comma separated; or $WHENLUA_ETCD) instead of using the home's own store"},
		&cli.StringFlag{Name: "cluster", EnvVars: []string{"WHENLUA_CLUSTER"}, Value: cluster.DefaultCluster,
			Usage: "with --etcd: the cluster's `NAME` (or $WHENLUA_CLUSTER; several clusters can share one etcd)"},
		&cli.StringFlag{Name: "node", EnvVars: []string{"WHENLUA_NODE"},
			Usage: "with --etcd: this node's `NAME`, unique in the cluster (or $WHENLUA_NODE; default: the host name)"},
		&cli.StringFlag{Name: "node-addr", Value: "127.0.0.1:0",
			Usage: "with --etcd: listen for the other nodes on `ADDR` (host:port; port 0: any free one); they must reach it"},
		&cli.DurationFlag{Name: "lease-ttl", Value: cluster.DefaultTTL,
			Usage: "with --etcd: a node that stops renewing its lease for `DURATION` (whole seconds) loses its leadership and its runs"},
	}
}

// checkClusterFlags refuses cluster flags without --etcd and bad values.
func checkClusterFlags(c *cli.Context) error {
	if c.String("etcd") == "" {
		for _, f := range []string{"cluster", "node", "node-addr", "lease-ttl"} {
			if c.IsSet(f) {
				return usageErrorf("--%s is given without --etcd", f)
			}
		}
		return nil
	}
	if c.Bool("recover") {
		return usageErrorf("--recover repairs the home's own store; with --etcd the state is in etcd")
	}
	if len(etcdEndpoints(c)) == 0 {
		return usageErrorf("--etcd: want URL[,URL...], not %q", c.String("etcd"))
	}
	if err := cluster.ValidateClusterName(c.String("cluster")); err != nil {
		return usageErrorf("--cluster: %v", err)
	}
	if c.String("node") != "" {
		if err := whenlua.ValidateNodeName(c.String("node")); err != nil {
			return usageErrorf("--node: %v", err)
		}
	}
	if d := c.Duration("lease-ttl"); d < time.Second || d%time.Second != 0 {
		return usageErrorf("--lease-ttl: want whole seconds, at least 1s, not %v", d)
	}
	return nil
}

func etcdEndpoints(c *cli.Context) []string {
	var out []string
	for _, u := range strings.Split(c.String("etcd"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// clusterArgs are the cluster flags given to c, for the daemon that
// `daemon start` runs (the environment variables reach it by themselves).
func clusterArgs(c *cli.Context) []string {
	var args []string
	for _, f := range []string{"etcd", "cluster", "node", "node-addr"} {
		if c.IsSet(f) && os.Getenv("WHENLUA_"+strings.ToUpper(f)) != c.String(f) {
			args = append(args, "--"+f+"="+c.String(f))
		}
	}
	if c.IsSet("lease-ttl") {
		args = append(args, "--lease-ttl="+strconv.Itoa(int(c.Duration("lease-ttl")/time.Second))+"s")
	}
	return args
}

// clusterBackend returns the daemon's backend for --etcd: a node of the
// cluster; nil without --etcd (the home's own store).
func clusterBackend(c *cli.Context) func(context.Context, host.BackendEnv) (host.Backend, error) {
	if c.String("etcd") == "" {
		return nil
	}
	node := c.String("node")
	if node == "" {
		node, _ = os.Hostname()
	}
	opts := cluster.NodeOptions{
		Endpoints: etcdEndpoints(c),
		Cluster:   c.String("cluster"),
		Node:      node,
		Addr:      c.String("node-addr"),
		TTL:       c.Duration("lease-ttl"),
		Store: cluster.Options{HistoryKeep: c.Int("history-keep"), HistoryMaxAge: c.Duration("history-max-age"),
			RunsKeep: c.Int("runs-keep")},
	}
	return func(ctx context.Context, env host.BackendEnv) (host.Backend, error) {
		o := opts
		o.Paths, o.Logger, o.Engine = env.Paths, env.Logger, env.Engine
		n := cluster.NewNode(o)
		if err := n.Open(ctx); err != nil {
			return nil, err
		}
		return n, nil
	}
}
