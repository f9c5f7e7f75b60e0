package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host/runner"
)

// localRun is a run this node claimed, as the node runs it.
type localRun struct {
	serial uint64
	crev   int64 // the create revision of its claim: the fence of its end
	lease  clientv3.LeaseID

	// Under Node.lmu.
	proc    *runner.Proc // nil until started
	stopped bool         // cancelled because the node stops
	written bool         // its end is in etcd, as done: it waits for the leader
}

// work claims, for the session sess, the offers this node may take, until
// ctx is done. It reads the offers waiting, then follows new ones.
func (n *Node) work(ctx context.Context, sess *concurrency.Session) {
	pfx := n.key("run") + "/"
	for ctx.Err() == nil {
		// The runs whose end is stored, as known before the read: one
		// whose done the read does not show was taken by the leader.
		n.lmu.Lock()
		var written []uint64
		for serial, lr := range n.local {
			if lr.written {
				written = append(written, serial)
			}
		}
		n.lmu.Unlock()
		resp, err := n.cli.Get(ctx, pfx, clientv3.WithPrefix())
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("read the offers", "err", err)
				sleep(ctx, 500*time.Millisecond)
			}
			continue
		}
		done, taken, due := map[uint64]bool{}, map[uint64]bool{}, map[uint64][]byte{}
		for _, kv := range resp.Kvs {
			serial, part, ok := n.parseRunKey(string(kv.Key))
			switch {
			case !ok:
			case part == "due":
				due[serial] = kv.Value
			case part == "taken":
				taken[serial] = true
			case part == "done":
				done[serial] = true
			}
		}
		for serial, val := range due {
			if !taken[serial] {
				n.offered(ctx, sess, val)
			}
		}
		// Ends the leader took while this node did not watch.
		for _, serial := range written {
			if !done[serial] {
				n.dropLocal(serial)
			}
		}
		wch := n.cli.Watch(clientv3.WithRequireLeader(ctx), pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				serial, part, ok := n.parseRunKey(string(ev.Kv.Key))
				switch {
				case !ok:
				case part == "due" && ev.Type == clientv3.EventTypePut:
					n.offered(ctx, sess, ev.Kv.Value)
				case part == "done" && ev.Type == clientv3.EventTypeDelete:
					// The leader committed the run's end: its directory goes.
					n.dropLocal(serial)
				}
			}
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// offered claims an offer when this node may run it (its on option).
func (n *Node) offered(ctx context.Context, sess *concurrency.Session, val []byte) {
	var o offer
	if err := json.Unmarshal(val, &o); err != nil {
		n.log.Warn("an offer that does not parse", "err", err)
		return
	}
	switch {
	case o.On == whenlua.OnAny, o.On == n.opts.Node, o.On == whenlua.OnLeader && o.Leader == n.opts.Node:
	default:
		return
	}
	// One claim at a time per run: an offer seen twice (the watch started
	// again) is not claimed twice by this node.
	n.lmu.Lock()
	if n.claiming[o.Serial] || n.local[o.Serial] != nil {
		n.lmu.Unlock()
		return
	}
	n.claiming[o.Serial] = true
	n.lmu.Unlock()
	n.claims.Add(1)
	go func() {
		defer n.claims.Done()
		n.claim(ctx, sess, o)
		n.lmu.Lock()
		delete(n.claiming, o.Serial)
		n.lmu.Unlock()
	}()
}

// claim takes the offer o when no other node did, runs it, and reports
// its end.
func (n *Node) claim(ctx context.Context, sess *concurrency.Session, o offer) {
	if o.On == whenlua.OnAny {
		// A busy node leaves a run to the others for a moment.
		n.lmu.Lock()
		busy := len(n.local)
		n.lmu.Unlock()
		sleep(ctx, time.Duration(min(busy, 20))*10*time.Millisecond)
	}
	due, taken, ck := n.runKey(o.Serial, "due"), n.runKey(o.Serial, "taken"), n.runKey(o.Serial, "claim")
	cr := claimRecord{Node: n.opts.Node, Addr: n.addr}
	val, _ := json.Marshal(cr)
	tval, _ := json.Marshal(takenRecord{Node: n.opts.Node})
	var crev int64
	for wait := 100 * time.Millisecond; crev == 0; wait = min(2*wait, time.Second) {
		// Not bound to ctx: a claim cut short by its context would leave
		// its outcome unknown.
		tctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := n.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(due), ">", 0), clientv3.Compare(clientv3.CreateRevision(taken), "=", 0)).
			Then(clientv3.OpPut(taken, string(tval)), clientv3.OpPut(ck, string(val), clientv3.WithLease(sess.Lease()))).
			Else(clientv3.OpGet(ck)).Commit()
		cancel()
		switch {
		case err == nil && resp.Succeeded:
			crev = resp.Header.Revision
		case err == nil:
			// Taken: by another node, or by this one in a try whose reply
			// was lost (its claim under this session's lease).
			kvs := resp.Responses[0].GetResponseRange().Kvs
			if len(kvs) == 0 || clientv3.LeaseID(kvs[0].Lease) != sess.Lease() {
				return
			}
			crev = kvs[0].CreateRevision
		case ctx.Err() != nil:
			// The outcome is unknown and the session ends: the claim, read
			// back, tells whether this node holds it (a lease resumed).
			if crev = n.heldClaim(ck, sess.Lease()); crev == 0 {
				return
			}
		default:
			// The outcome is unknown: tried again, the transaction tells.
			n.log.Warn("claim a run: trying again", "serial", o.Serial, "err", err)
			sleep(ctx, wait)
		}
	}
	lr := &localRun{serial: o.Serial, crev: crev, lease: sess.Lease()}
	n.lmu.Lock()
	n.local[o.Serial] = lr
	n.lmu.Unlock()
	spec := runner.Spec{Serial: o.Serial, Job: o.Job, Script: o.Script, Shell: o.Shell, Env: n.runEnv(o.Env), Timeout: o.Timeout}
	proc, err := n.runner.Start(spec, func(res runner.Result) { n.ended(lr, res) })
	if err != nil {
		n.log.Error("start job", "job", o.Job, "serial", o.Serial, "err", err)
		n.writeEnd(lr, endRecord{Node: n.opts.Node, Result: runner.Result{Serial: o.Serial, Code: -1}, NotStarted: err.Error()})
		return
	}
	n.lmu.Lock()
	lr.proc = proc
	if n.stopping || n.lostLeases[lr.lease] {
		// The node stops, or the lease went, while it started.
		lr.stopped = n.stopping
		proc.Cancel()
	}
	n.lmu.Unlock()
	n.log.Info("claimed run started", "job", o.Job, "serial", o.Serial, "pid", proc.PID())
	cr.PID, cr.Dir = proc.PID(), proc.Dir()
	val, _ = json.Marshal(cr)
	tctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.cli.Txn(tctx).If(clientv3.Compare(clientv3.CreateRevision(ck), "=", lr.crev)).
		Then(clientv3.OpPut(ck, string(val), clientv3.WithLease(lr.lease))).Commit(); err != nil && n.cli.Ctx().Err() == nil {
		n.log.Warn("record a run's process", "serial", o.Serial, "err", err)
	}
}

// heldClaim reads the claim ck: its create revision when lease holds it,
// else 0 (another node's, none, or etcd did not answer).
func (n *Node) heldClaim(ck string, lease clientv3.LeaseID) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := n.cli.Get(ctx, ck)
	if err != nil || len(resp.Kvs) != 1 || clientv3.LeaseID(resp.Kvs[0].Lease) != lease {
		return 0
	}
	return resp.Kvs[0].CreateRevision
}

// runEnv is the environment of a run on this node: the node's own, then
// the run's (its variables, JOBNAME...), then this node's WHENLUA_HOME, so
// that a job's `whenlua set` goes to the node that runs it.
func (n *Node) runEnv(run []string) []string {
	base := n.opts.Engine.Env
	if base == nil {
		base = os.Environ()
	}
	set := map[string]bool{whenlua.EnvHome: true}
	for _, kv := range run {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	env := make([]string, 0, len(base)+len(run)+1)
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			env = append(env, kv)
		}
	}
	for _, kv := range run {
		if !strings.HasPrefix(kv, whenlua.EnvHome+"=") {
			env = append(env, kv)
		}
	}
	if h := n.opts.Paths.Home; h != "" {
		env = append(env, whenlua.EnvHome+"="+h)
	}
	return env
}

// ended reports the end of a run's process.
func (n *Node) ended(lr *localRun, res runner.Result) {
	n.lmu.Lock()
	stopped := lr.stopped
	n.lmu.Unlock()
	n.log.Info("claimed run ended", "serial", lr.serial, "code", res.Code, "signal", res.Signal)
	n.writeEnd(lr, endRecord{Node: n.opts.Node, Result: res, Stopped: stopped})
}

// writeEnd puts the run's end as done while this node's claim holds, else
// as late: the leader recorded the run lost when the claim lapsed, and adds
// the late end to that record. A late run's directory goes at once.
func (n *Node) writeEnd(lr *localRun, er endRecord) {
	val, err := json.Marshal(er)
	if err != nil {
		n.log.Error("report a run's end", "serial", lr.serial, "err", err)
		return
	}
	ck := n.runKey(lr.serial, "claim")
	// Tried until it is stored or the node closes its etcd client: while
	// the claim holds, the leader waits for this end.
	wait := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(ck), "=", lr.crev)).
			Then(clientv3.OpPut(n.runKey(lr.serial, "done"), string(val))).
			Else(clientv3.OpPut(n.runKey(lr.serial, "late"), string(val))).Commit()
		cancel()
		switch {
		case err == nil && resp.Succeeded:
			n.lmu.Lock()
			lr.written = true
			n.lmu.Unlock()
			return
		case err == nil:
			n.log.Warn("a run's end came after its claim lapsed: reported late", "serial", lr.serial, "code", er.Result.Code)
			n.dropLocal(lr.serial)
			return
		case n.cli.Ctx().Err() != nil:
			n.log.Error("report a run's end: the node left etcd", "serial", lr.serial, "err", err)
			n.dropLocal(lr.serial)
			return
		}
		sleep(n.cli.Ctx(), wait)
		wait = min(2*wait, 2*time.Second)
	}
}

// dropLocal forgets a local run once its end is taken, and removes its
// directory.
func (n *Node) dropLocal(serial uint64) {
	n.lmu.Lock()
	lr := n.local[serial]
	delete(n.local, serial)
	n.lmu.Unlock()
	if lr == nil || lr.proc == nil {
		return
	}
	if err := lr.proc.Cleanup(); err != nil {
		n.log.Warn("remove run directory", "serial", serial, "err", err)
	}
}

// stopLocal cancels the runs claimed under lease (every run when lease is
// 0, the node stopping: their ends say so), and those that start later.
func (n *Node) stopLocal(lease clientv3.LeaseID) {
	n.lmu.Lock()
	defer n.lmu.Unlock()
	if lease == 0 {
		n.stopping = true
	} else {
		n.lostLeases[lease] = true
	}
	for _, lr := range n.local {
		if lr.proc != nil && (lease == 0 || lr.lease == lease) {
			lr.stopped = lease == 0
			lr.proc.Cancel()
		}
	}
}

// localProc returns the process of a run this node runs, or nil.
func (n *Node) localProc(serial uint64) *runner.Proc {
	n.lmu.Lock()
	defer n.lmu.Unlock()
	if lr := n.local[serial]; lr != nil {
		return lr.proc
	}
	return nil
}

// tailOn follows the output of the run serial on the node of claim c. A
// run that node no longer has gives an error wrapping whenlua.ErrNotFound.
func (n *Node) tailOn(ctx context.Context, c claimRecord, serial uint64, w io.Writer) error {
	if c.Node == n.opts.Node {
		return n.tailLocal(ctx, serial, w)
	}
	err := n.client(c.Addr).Tail(ctx, serial, w)
	if errors.Is(err, whenlua.ErrNotLeader) {
		return fmt.Errorf("%w: run %d is not on node %s", whenlua.ErrNotFound, serial, c.Node)
	}
	return err
}

// tailLocal follows the output of the run serial, which this node runs; a
// run it no longer has gives an error wrapping whenlua.ErrNotFound.
func (n *Node) tailLocal(ctx context.Context, serial uint64, w io.Writer) error {
	p := n.localProc(serial)
	if p == nil {
		return fmt.Errorf("%w: run %d", whenlua.ErrNotFound, serial)
	}
	err := p.Tail(ctx, w)
	if errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("%w: run %d ended", whenlua.ErrNotFound, serial)
	}
	return err
}

// cancelOn cancels the run serial on the node of claim c.
func (n *Node) cancelOn(ctx context.Context, c claimRecord, serial uint64) error {
	if c.Node == n.opts.Node {
		if p := n.localProc(serial); p != nil {
			p.Cancel()
		}
		return nil
	}
	return n.client(c.Addr).Cancel(ctx, serial)
}

// client returns the node-to-node client of the node at addr.
func (n *Node) client(addr string) *whenlua.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clientLocked(addr)
}

func (n *Node) clientLocked(addr string) *whenlua.Client {
	c := n.clients[addr]
	if c == nil {
		c = whenlua.DialNode(addr, n.secret)
		n.clients[addr] = c
	}
	return c
}
