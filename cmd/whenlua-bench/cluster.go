package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/etcdtest"
)

// clusterTTL is the nodes' lease TTL: a dead leader is replaced within it.
const clusterTTL = 2 * time.Second

// clusterNodes is the number of whenlua nodes of each measured cluster.
const clusterNodes = 3

// etcdSetup is one etcd the cluster rows run on: members started by the
// bench (stopped at the end), or the endpoints given with -etcd.
type etcdSetup struct {
	label     string
	endpoints []string
	close     func()
}

// etcdSetups starts the etcds of the C rows: an embedded etcd on loopback
// of each number of members, each in a fresh directory, or only the one
// given with -etcd.
func etcdSetups(b *bench, given string, members ...int) ([]etcdSetup, error) {
	if given != "" {
		return []etcdSetup{{label: "given etcd", endpoints: strings.Split(given, ","), close: func() {}}}, nil
	}
	var setups []etcdSetup
	for _, members := range members {
		dir, err := os.MkdirTemp(b.root, fmt.Sprintf("etcd%d-", members))
		if err != nil {
			return nil, err
		}
		c, err := etcdtest.Launch(etcdtest.Options{Members: members, Dir: dir})
		if err != nil {
			for _, s := range setups {
				s.close()
			}
			return nil, fmt.Errorf("start a %d-member etcd: %w", members, err)
		}
		setups = append(setups, etcdSetup{label: fmt.Sprintf("%d-member etcd", members), endpoints: c.Endpoints(), close: c.Close})
	}
	return setups, nil
}

// clusterOf is the nodes of one whenlua cluster on one etcd.
type clusterOf struct {
	b     *bench
	name  string
	etcd  []string
	nodes []*daemon
}

// nodeArgs are the flags that make home p's daemon node n of cl.
func (cl *clusterOf) nodeArgs(i int) []string {
	return []string{"--etcd", strings.Join(cl.etcd, ","), "--cluster", cl.name,
		"--node", fmt.Sprintf("n%d", i+1), "--lease-ttl", clusterTTL.String()}
}

// startCluster starts clusterNodes nodes named n1.. of cluster name on
// etcd, each in its own home, and waits until they agree on a leader.
func startCluster(ctx context.Context, b *bench, name string, etcd []string) (*clusterOf, error) {
	cl := &clusterOf{b: b, name: name, etcd: etcd}
	for i := range clusterNodes {
		p, err := b.home(fmt.Sprintf("%s-n%d", name, i+1))
		if err != nil {
			return nil, err
		}
		d, err := b.start(ctx, p, cl.nodeArgs(i)...)
		if err != nil {
			return nil, err
		}
		cl.nodes = append(cl.nodes, d)
	}
	if _, err := cl.waitLeader(ctx); err != nil {
		return nil, err
	}
	return cl, nil
}

// waitLeader waits until every node sees all clusterNodes nodes live and
// the same leader, and returns the leader's index.
func (cl *clusterOf) waitLeader(ctx context.Context) (int, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		leader, ok := "", true
		for _, d := range cl.nodes {
			st, err := d.c.Status(ctx)
			if err != nil || st.Cluster == nil || len(st.Cluster.Nodes) != len(cl.nodes) ||
				st.Cluster.Leader == "" || (leader != "" && st.Cluster.Leader != leader) {
				ok = false
				break
			}
			leader = st.Cluster.Leader
		}
		if ok {
			if i, err := strconv.Atoi(strings.TrimPrefix(leader, "n")); err == nil && i >= 1 && i <= len(cl.nodes) {
				return i - 1, nil
			}
			return 0, fmt.Errorf("cluster %s: unknown leader %q", cl.name, leader)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("cluster %s: no agreed leader with %d live nodes after 60s", cl.name, len(cl.nodes))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rawTxn is the baseline of the set rows: the etcd transaction a set of
// one variable commits, written by the bench itself with clientv3 under a
// cluster prefix of its own: fenced by an election key's create revision
// and a head key's mod revision, it puts the variable's value, its new
// version and the head. Each concurrent writer g has a head of its own,
// so that the baseline's transactions run concurrently and etcd batches
// them, the most it does.
type rawTxn struct {
	cli   *clientv3.Client
	root  string
	fence int64
	seq   [8]uint64
	head  [8]int64 // mod revision of writer g's head
}

func newRawTxn(ctx context.Context, endpoints []string, name string) (*rawTxn, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	r := &rawTxn{cli: cli, root: "/whenlua/" + name + "/"}
	resp, err := cli.Put(ctx, r.root+"election/1", "n1")
	if err != nil {
		cli.Close()
		return nil, err
	}
	r.fence = resp.Header.Revision
	for g := range r.head {
		if resp, err = cli.Put(ctx, r.headKey(g), "0"); err != nil {
			cli.Close()
			return nil, err
		}
		r.head[g] = resp.Header.Revision
	}
	return r, nil
}

func (r *rawTxn) headKey(g int) string { return fmt.Sprintf("%sm/head%d", r.root, g) }

// set commits writer g's next set of its variable b<g> to v.
func (r *rawTxn) set(ctx context.Context, g int, v int64) error {
	r.seq[g]++
	name := fmt.Sprintf("b%d", g)
	val := string(whenlua.Int(v).AppendBinary(nil))
	hist := fmt.Sprintf(`{"time":%q,"origin":"cli","value":%d}`, time.Now().UTC().Format(time.RFC3339Nano), v)
	resp, err := r.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(r.root+"election/1"), "=", r.fence),
		clientv3.Compare(clientv3.ModRevision(r.headKey(g)), "=", r.head[g]),
	).Then(
		clientv3.OpPut(r.root+"v/"+name, val),
		clientv3.OpPut(fmt.Sprintf("%sh/%s/%016x", r.root, name, r.seq[g]), hist),
		clientv3.OpPut(r.headKey(g), strconv.FormatUint(r.seq[g], 10)),
	).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return errors.New("raw transaction: fence failed")
	}
	r.head[g] = resp.Header.Revision
	return nil
}

// rateOf runs k loops of one op for d and returns the ops per second and
// every op's latency.
func rateOf(ctx context.Context, k int, d time.Duration, op func(g int, i int64) error) (float64, []time.Duration, error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, k)
	lats := make([][]time.Duration, k)
	t0 := time.Now()
	for g := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); time.Since(t0) < d; i++ {
				s := time.Now()
				if err := op(g, i); err != nil {
					errs[g] = err
					return
				}
				lats[g] = append(lats[g], time.Since(s))
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return 0, nil, err
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return float64(n.Load()) / el.Seconds(), all, nil
}

// benchClusterSets is C1: sets of one variable (each acknowledged once
// the leader's fenced etcd transaction committed it) through the leader
// and through a follower, which forwards it, from 1 and from 8 clients,
// on each etcd, beside the raw etcd transaction of the same keys from as
// many goroutines. Each round measures the raw transaction and the sets
// in turn; a ratio is the median over rounds of the ratio within a round.
func benchClusterSets(ctx context.Context, b *bench, cfg config) ([]row, error) {
	setups, err := etcdSetups(b, b.etcd, 1, 3)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range setups {
			s.close()
		}
	}()
	var rows []row
	for si, s := range setups {
		rs, err := clusterSetRows(ctx, b, cfg, s, si)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.label, err)
		}
		rows = append(rows, rs...)
		// The nodes go before their etcd does.
		if err := b.stopAll(); err != nil {
			return nil, err
		}
	}
	if len(rows) > 0 {
		rows[len(rows)-1].note = clusterSetsNote(cfg)
	}
	return rows, nil
}

func clusterSetRows(ctx context.Context, b *bench, cfg config, s etcdSetup, si int) ([]row, error) {
	name := fmt.Sprintf("bench%d-%d", si, time.Now().UnixNano())
	cl, err := startCluster(ctx, b, name, s.endpoints)
	if err != nil {
		return nil, err
	}
	raw, err := newRawTxn(ctx, s.endpoints, name+"-raw")
	if err != nil {
		return nil, err
	}
	defer raw.cli.Close()
	leader, err := cl.waitLeader(ctx)
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, via := range []string{"leader", "follower"} {
		nd := cl.nodes[leader]
		if via == "follower" {
			nd = cl.nodes[(leader+1)%len(cl.nodes)]
		}
		clients := make([]*whenlua.Client, 8)
		for i := range clients {
			clients[i] = whenlua.Dial(nd.p.Socket)
			defer clients[i].Close()
		}
		for _, k := range []int{1, 8} {
			set := func(g int, i int64) error {
				_, err := clients[g].Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet,
					Assignments: []whenlua.Assignment{{Name: fmt.Sprintf("b%d", g), Value: whenlua.Int(i)}}})
				return err
			}
			rawSet := func(g int, i int64) error { return raw.set(ctx, g, i) }
			// A short warm-up of each, not counted.
			for _, op := range []func(int, int64) error{rawSet, set} {
				if _, _, err := rateOf(ctx, k, cfg.roundLength/4, op); err != nil {
					return nil, err
				}
			}
			var rates, bases, ratios []float64
			var lats []time.Duration
			for round := range cfg.rounds {
				ops := []func(int, int64) error{rawSet, set}
				got := make([]float64, 2)
				for j := range ops {
					i := (round + j) % 2
					rate, l, err := rateOf(ctx, k, cfg.roundLength, ops[i])
					if err != nil {
						return nil, err
					}
					got[i] = rate
					if i == 1 {
						lats = append(lats, l...)
					}
				}
				bases, rates, ratios = append(bases, got[0]), append(rates, got[1]), append(ratios, got[1]/got[0])
			}
			clientsLabel := "1 client"
			if k > 1 {
				clientsLabel = fmt.Sprintf("%d clients", k)
			}
			rows = append(rows, row{
				key:      "C1",
				name:     fmt.Sprintf("sets via %s, %s, %s", via, s.label, clientsLabel),
				figure:   fmt.Sprintf("%.0f /s, p50 %s, p99 %s", median(rates), ms(percentile(lats, 50)), ms(percentile(lats, 99))),
				baseline: fmt.Sprintf("%.0f raw txn/s", median(bases)),
				ratio:    ratio(median(ratios)),
				target:   ">= 0.5x",
				ok:       verdict(median(ratios) >= 0.5),
			})
		}
	}
	return rows, nil
}

// clusterSetsNote is the note under the C1 rows.
func clusterSetsNote(cfg config) string {
	return fmt.Sprintf("%d nodes, lease TTL %s, median of %d rounds of %s; raw txn: the fenced etcd "+
		"transaction of a one-variable set (value, version, head) from as many goroutines (each its own variable and head), by the bench's own etcd client",
		clusterNodes, clusterTTL, cfg.rounds, cfg.roundLength)
}

// benchFailover is C2: the leader node SIGKILLed, until the next set
// through a survivor is acknowledged, over cfg.kills kills; the killed
// node is started again between kills, untimed. It runs on the 3-member
// etcd (or the given one).
func benchFailover(ctx context.Context, b *bench, cfg config) ([]row, error) {
	setups, err := etcdSetups(b, b.etcd, 3)
	if err != nil {
		return nil, err
	}
	s := setups[0]
	defer s.close()
	// The nodes go before their etcd does.
	defer b.stopAll()
	cl, err := startCluster(ctx, b, fmt.Sprintf("failover-%d", time.Now().UnixNano()), s.endpoints)
	if err != nil {
		return nil, err
	}
	var lats []time.Duration
	for i := range cfg.kills {
		leader, err := cl.waitLeader(ctx)
		if err != nil {
			return nil, err
		}
		dead := cl.nodes[leader]
		survivor := cl.nodes[(leader+1)%len(cl.nodes)]
		t0 := time.Now()
		if err := killWait(dead.pid); err != nil {
			return nil, err
		}
		for {
			_, err := survivor.c.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet,
				Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(int64(i))}}})
			if err == nil {
				break
			}
			if ctx.Err() != nil || time.Since(t0) > time.Minute {
				return nil, fmt.Errorf("kill %d: no set acknowledged: %w", i+1, err)
			}
		}
		lats = append(lats, time.Since(t0))
		b.forget(dead)
		d, err := b.start(ctx, dead.p, cl.nodeArgs(leader)...)
		if err != nil {
			return nil, err
		}
		cl.nodes[leader] = d
	}
	p50 := percentile(lats, 50)
	return []row{{
		key:      "C2",
		name:     fmt.Sprintf("failover: leader SIGKILL to next set acknowledged, %s, %d kills", s.label, cfg.kills),
		figure:   fmt.Sprintf("p50 %s, max %s", ms(p50), ms(percentile(lats, 100))),
		baseline: fmt.Sprintf("lease TTL %s", clusterTTL),
		ratio:    ratio(float64(p50) / float64(clusterTTL)),
		target:   "<= 2x",
		ok:       verdict(p50 <= 2*clusterTTL),
	}}, nil
}

// procGone reports whether pid is gone: no such process, or a zombie
// its parent has not reaped yet.
func procGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// killWait SIGKILLs pid and waits until it is gone.
func killWait(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for !procGone(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still runs 30s after SIGKILL", pid)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}
