package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host"
)

var _ whenlua.Service = (*Node)(nil)
var _ host.Backend = (*Node)(nil)

// target returns this node's engine when it leads, else the leader's
// endpoint (nil while no leader is known), and a channel closed at the next
// change of either.
func (n *Node) target() (eng *host.Engine, remote *whenlua.Client, leader string, changed <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	changed = n.changed
	if n.engine != nil {
		return n.engine, nil, n.opts.Node, changed
	}
	li := n.leader
	if li.Node == "" || li.Node == n.opts.Node || li.Addr == "" {
		return nil, nil, li.Node, changed
	}
	return nil, n.clientLocked(li.Addr), li.Node, changed
}

// nothingDone tells whether an error of this node's engine means that the
// call changed nothing because the engine stopped or lost the leadership
// under it: the call may then go to the next leader.
func nothingDone(err error) bool {
	return errors.Is(err, host.ErrStopped) || errors.Is(err, ErrNotLeader)
}

// notSent tells whether an error of a call to another node means that the
// request never reached it (no connection was made).
func notSent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// call runs f against the leader: this node's engine when it leads, else
// the leader's node-to-node endpoint. While there is no leader, or the
// leader changes under the call, it waits for the next one and calls again,
// until ctx is done — but only when the call cannot have been applied:
// the leader answered that it does not lead (and did nothing), or the
// request never reached it. A change (idempotent false) whose request may
// have reached a leader that then stopped answering is not sent again,
// since it may have been applied: its error says so. Reads are sent again.
// A call not answered by this node's own engine counts as forwarded.
func (n *Node) call(ctx context.Context, idempotent bool, f func(whenlua.Service) error) (err error) {
	local := false // the last try went to this node's own engine
	defer func() {
		if !local {
			n.metrics.countForward(err)
		}
	}()
	wait := 20 * time.Millisecond
	for {
		eng, remote, leader, changed := n.target()
		err = nil
		local = eng != nil
		switch {
		case eng != nil:
			err = f(eng)
			if err == nil || !nothingDone(err) {
				return err
			}
		case remote != nil:
			err = f(remote)
			if err == nil || whenlua.IsRemote(err) && !errors.Is(err, whenlua.ErrNotLeader) {
				return err
			}
			if !errors.Is(err, whenlua.ErrNotLeader) && !notSent(err) && !idempotent {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("the leader %s stopped answering during the call, which may or may not have been applied: %w", leader, err)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				return fmt.Errorf("no leader answered: %w", ctx.Err())
			}
			return fmt.Errorf("no leader answered (last: %v): %w", err, ctx.Err())
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// Set implements whenlua.Service: it is acknowledged once the leader's
// fenced transaction committed it.
func (n *Node) Set(ctx context.Context, req whenlua.SetRequest) (resp whenlua.SetResponse, err error) {
	err = n.call(ctx, req.Mode == whenlua.ModeTest, func(s whenlua.Service) error {
		resp, err = s.Set(ctx, req)
		return err
	})
	return resp, err
}

// Get implements whenlua.Service.
func (n *Node) Get(ctx context.Context, name string) (v whenlua.Value, err error) {
	err = n.call(ctx, true, func(s whenlua.Service) error { v, err = s.Get(ctx, name); return err })
	return v, err
}

// Vars implements whenlua.Service.
func (n *Node) Vars(ctx context.Context) (m map[string]whenlua.Value, err error) {
	err = n.call(ctx, true, func(s whenlua.Service) error { m, err = s.Vars(ctx); return err })
	return m, err
}

// History implements whenlua.Service.
func (n *Node) History(ctx context.Context, name string, k int) (vs []whenlua.Version, err error) {
	err = n.call(ctx, true, func(s whenlua.Service) error { vs, err = s.History(ctx, name, k); return err })
	return vs, err
}

// Why implements whenlua.Service: the leader's engine keeps the
// evaluations.
func (n *Node) Why(ctx context.Context, job string) (w whenlua.WhyReport, err error) {
	err = n.call(ctx, true, func(s whenlua.Service) error { w, err = s.Why(ctx, job); return err })
	return w, err
}

// ScanHistory implements whenlua.HistoryScanner (`whenlua simulate`
// through a node) by streaming the leader's. It is not resent once the
// stream may have begun, so fn never sees a version twice.
func (n *Node) ScanHistory(ctx context.Context, fn func(whenlua.VarVersion) error) error {
	return n.call(ctx, false, func(s whenlua.Service) error { return scanHistory(ctx, s, fn) })
}

func scanHistory(ctx context.Context, s whenlua.Service, fn func(whenlua.VarVersion) error) error {
	hs, ok := s.(whenlua.HistoryScanner)
	if !ok {
		return fmt.Errorf("%w: this node cannot list the history of every variable", whenlua.ErrInvalid)
	}
	return hs.ScanHistory(ctx, fn)
}

// Names implements whenlua.Service: the jobs the leader loaded.
func (n *Node) Names(ctx context.Context) (js []whenlua.JobInfo, err error) {
	err = n.call(ctx, true, func(s whenlua.Service) error { js, err = s.Names(ctx); return err })
	return js, err
}

// Jobs implements whenlua.Service.
func (n *Node) Jobs(ctx context.Context) (rs []whenlua.Run, err error) {
	err = n.call(ctx, true, func(s whenlua.Service) error { rs, err = s.Jobs(ctx); return err })
	return rs, err
}

// Start implements whenlua.Service.
func (n *Node) Start(ctx context.Context, name string) (r whenlua.Run, err error) {
	err = n.call(ctx, false, func(s whenlua.Service) error { r, err = s.Start(ctx, name); return err })
	return r, err
}

// Cancel implements whenlua.Service.
func (n *Node) Cancel(ctx context.Context, serial uint64) error {
	return n.call(ctx, false, func(s whenlua.Service) error { return s.Cancel(ctx, serial) })
}

// Tail implements whenlua.Service. It is not sent again once the leader
// may have written some of the output.
func (n *Node) Tail(ctx context.Context, serial uint64, w io.Writer) error {
	return n.call(ctx, false, func(s whenlua.Service) error { return s.Tail(ctx, serial, w) })
}

// Log implements whenlua.Service.
func (n *Node) Log(ctx context.Context, job string, k int) (rs []whenlua.Run, err error) {
	err = n.call(ctx, true, func(s whenlua.Service) error { rs, err = s.Log(ctx, job, k); return err })
	return rs, err
}

// Run implements whenlua.Service.
func (n *Node) Run(ctx context.Context, serial uint64) (r whenlua.Run, err error) {
	err = n.call(ctx, true, func(s whenlua.Service) error { r, err = s.Run(ctx, serial); return err })
	return r, err
}

// Status implements whenlua.Service: the leader's engine (job files, next
// runs) as this node sees it, with the cluster. Without a leader within a
// few seconds, the cluster alone.
func (n *Node) Status(ctx context.Context) (st whenlua.Status, err error) {
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := n.call(lctx, true, func(s whenlua.Service) error { st, err = s.Status(lctx); return err }); err != nil {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		st = whenlua.Status{}
	}
	return n.withCluster(ctx, st)
}

// Reload implements whenlua.Service: the leader rescans its jobs directory.
// (Each node hashes its own job files for its record every half TTL.)
func (n *Node) Reload(ctx context.Context, req whenlua.ReloadRequest) (st whenlua.Status, err error) {
	err = n.call(ctx, true, func(s whenlua.Service) error { st, err = s.Reload(ctx, req); return err })
	if err != nil {
		return st, err
	}
	return n.withCluster(ctx, st)
}

// withCluster fills in this node's own directories and the cluster.
func (n *Node) withCluster(ctx context.Context, st whenlua.Status) (whenlua.Status, error) {
	st.JobsDir, st.StateDir = n.opts.Paths.JobsDir, n.opts.Paths.StateDir
	cs, err := n.clusterStatus(ctx)
	if err != nil {
		return st, err
	}
	st.Cluster = &cs
	return st, nil
}

// endpoint is what the node-to-node endpoint serves: the calls other nodes
// forward, answered by this node's engine only while it leads. Otherwise,
// or when the engine stopped under a call, the answer is ErrNotLeader: the
// call did nothing, and the caller sends it to the next leader.
type endpoint struct{ n *Node }

func (e endpoint) do(f func(s whenlua.Service) error) error {
	e.n.mu.Lock()
	eng := e.n.engine
	e.n.mu.Unlock()
	if eng == nil {
		return fmt.Errorf("%w: node %s", whenlua.ErrNotLeader, e.n.opts.Node)
	}
	err := f(eng)
	if err != nil && nothingDone(err) {
		return fmt.Errorf("%w: node %s: %v", whenlua.ErrNotLeader, e.n.opts.Node, err)
	}
	return err
}

func (e endpoint) Set(ctx context.Context, req whenlua.SetRequest) (resp whenlua.SetResponse, err error) {
	err = e.do(func(s whenlua.Service) error { resp, err = s.Set(ctx, req); return err })
	return resp, err
}

func (e endpoint) Get(ctx context.Context, name string) (v whenlua.Value, err error) {
	err = e.do(func(s whenlua.Service) error { v, err = s.Get(ctx, name); return err })
	return v, err
}

func (e endpoint) Vars(ctx context.Context) (m map[string]whenlua.Value, err error) {
	err = e.do(func(s whenlua.Service) error { m, err = s.Vars(ctx); return err })
	return m, err
}

func (e endpoint) History(ctx context.Context, name string, k int) (vs []whenlua.Version, err error) {
	err = e.do(func(s whenlua.Service) error { vs, err = s.History(ctx, name, k); return err })
	return vs, err
}

func (e endpoint) Why(ctx context.Context, job string) (w whenlua.WhyReport, err error) {
	err = e.do(func(s whenlua.Service) error { w, err = s.Why(ctx, job); return err })
	return w, err
}

func (e endpoint) ScanHistory(ctx context.Context, fn func(whenlua.VarVersion) error) error {
	return e.do(func(s whenlua.Service) error { return scanHistory(ctx, s, fn) })
}

func (e endpoint) Names(ctx context.Context) (js []whenlua.JobInfo, err error) {
	err = e.do(func(s whenlua.Service) error { js, err = s.Names(ctx); return err })
	return js, err
}

func (e endpoint) Jobs(ctx context.Context) (rs []whenlua.Run, err error) {
	err = e.do(func(s whenlua.Service) error { rs, err = s.Jobs(ctx); return err })
	return rs, err
}

func (e endpoint) Start(ctx context.Context, name string) (r whenlua.Run, err error) {
	err = e.do(func(s whenlua.Service) error { r, err = s.Start(ctx, name); return err })
	return r, err
}

// Cancel cancels a run this node runs, or else forwards to the engine: the
// leader asks the node that runs a run to cancel it.
func (e endpoint) Cancel(ctx context.Context, serial uint64) error {
	if p := e.n.localProc(serial); p != nil {
		p.Cancel()
		return nil
	}
	return e.do(func(s whenlua.Service) error { return s.Cancel(ctx, serial) })
}

// Tail follows a run this node runs, or else forwards to the engine: the
// leader follows a run on the node that runs it.
func (e endpoint) Tail(ctx context.Context, serial uint64, w io.Writer) error {
	if e.n.localProc(serial) != nil {
		return e.n.tailLocal(ctx, serial, w)
	}
	return e.do(func(s whenlua.Service) error { return s.Tail(ctx, serial, w) })
}

func (e endpoint) Log(ctx context.Context, job string, k int) (rs []whenlua.Run, err error) {
	err = e.do(func(s whenlua.Service) error { rs, err = s.Log(ctx, job, k); return err })
	return rs, err
}

func (e endpoint) Run(ctx context.Context, serial uint64) (r whenlua.Run, err error) {
	err = e.do(func(s whenlua.Service) error { r, err = s.Run(ctx, serial); return err })
	return r, err
}

func (e endpoint) Status(ctx context.Context) (st whenlua.Status, err error) {
	err = e.do(func(s whenlua.Service) error { st, err = s.Status(ctx); return err })
	return st, err
}

func (e endpoint) Reload(ctx context.Context, req whenlua.ReloadRequest) (st whenlua.Status, err error) {
	err = e.do(func(s whenlua.Service) error { st, err = s.Reload(ctx, req); return err })
	return st, err
}
