package cluster

import (
	"context"
	"encoding/json"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/whenlua/whenlua/host"
)

// run is the node's loop, one session after another: it campaigns, leads
// while it is elected, and campaigns again while its session lives; a
// session lost (its lease expired) is replaced by a new one. Throughout a
// session the node claims and runs the runs offered to it. It ends when
// ctx is done, after the engine stopped, the node's runs were stopped and
// their ends reported, and the session was revoked.
func (n *Node) run(ctx context.Context, sess *concurrency.Session) {
	defer close(n.done)
	for {
		wctx, wcancel := context.WithCancel(ctx)
		worked := make(chan struct{})
		go func() {
			defer close(worked)
			n.work(wctx, sess)
		}()
		for {
			n.term(ctx, sess)
			if ctx.Err() != nil {
				break
			}
			select {
			case <-sess.Done():
			default:
				// A term that ended with the session alive (the leadership
				// given up, or an engine that did not open) is followed by
				// another campaign, not at once.
				n.log.Warn("term ended; campaigning again")
				sleep(ctx, time.Second)
				continue
			}
			break
		}
		wcancel()
		<-worked
		n.claims.Wait()
		if ctx.Err() != nil {
			// The node stops: its runs stop, and report their ends while its
			// claims hold; then the session goes.
			cctx, cancel := context.WithTimeout(context.Background(), max(n.opts.Engine.Grace, 5*time.Second)+10*time.Second)
			n.stopLocal(0)
			if err := n.runner.Close(cctx); err != nil {
				n.log.Warn("stop this node's runs", "err", err)
			}
			cancel()
			sess.Close() // revokes the lease: the record and the candidacy go
			return
		}
		// The session's keep-alive ended. When etcd still holds its lease
		// (the keep-alives failed while etcd elected a leader, say), the
		// same lease goes on in a new session: the node's record, its
		// candidacy and its claims stay.
		if resumed := n.resume(ctx, sess); resumed != nil {
			sess = resumed
			continue
		}
		// The lease expired: the runs claimed under it were recorded lost
		// by the leader; they stop, and their ends are reported late.
		n.stopLocal(sess.Lease())
		sess.Close()
		n.log.Warn("session lost; joining again")
		sleep(ctx, time.Second)
		for {
			var err error
			sess, err = n.register(ctx, false)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				n.runner.Close(context.Background())
				return
			}
			n.log.Warn("join the cluster again", "err", err)
			sleep(ctx, time.Second)
		}
	}
}

// resume returns a new session on the lease of sess when etcd still holds
// it, or nil.
func (n *Node) resume(ctx context.Context, sess *concurrency.Session) *concurrency.Session {
	// Asked until etcd says, for at most a TTL: a keep-alive that failed
	// because etcd did not answer may fail the first asks too.
	var resp *clientv3.LeaseTimeToLiveResponse
	for deadline := time.Now().Add(n.opts.TTL); ; {
		tctx, cancel := context.WithTimeout(ctx, n.opts.TTL)
		var err error
		resp, err = n.cli.TimeToLive(tctx, sess.Lease())
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil
		}
		sleep(ctx, 200*time.Millisecond)
	}
	if resp.TTL <= 0 {
		return nil
	}
	ns, err := concurrency.NewSession(n.cli, concurrency.WithTTL(int(n.opts.TTL/time.Second)),
		concurrency.WithLease(sess.Lease()), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil
	}
	n.log.Warn("session keep-alive lost, its lease still held: resumed", "lease", int64(sess.Lease()), "ttl_left", resp.TTL)
	return ns
}

// term is one session: refresh the node's record, campaign, and lead once
// elected, until the session ends or ctx is done.
func (n *Node) term(ctx context.Context, sess *concurrency.Session) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			n.log.Warn("session lease lost")
			cancel()
		case <-sctx.Done():
		}
	}()
	go func() {
		t := time.NewTicker(n.opts.TTL / 2)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				n.refreshFiles(sctx, sess)
			}
		}
	}()
	el := concurrency.NewElection(sess, n.key("election"))
	val, _ := json.Marshal(leaderInfo{Node: n.opts.Node, Addr: n.addr})
	for sctx.Err() == nil {
		if err := el.Campaign(sctx, string(val)); err != nil {
			if sctx.Err() == nil {
				n.log.Warn("campaign", "err", err)
				sleep(sctx, 500*time.Millisecond)
			}
			continue
		}
		n.lead(sctx, el)
		return
	}
}

// lead runs the engine on the cluster's store, every commit fenced by this
// node's leadership (its election key still has the create revision it
// was elected with), until ctx is done or the key is gone. The engine is
// closed at once then: a deposed leader commits nothing, and evaluates
// nothing more.
func (n *Node) lead(ctx context.Context, el *concurrency.Election) {
	lkey, lrev := el.Key(), el.Rev()
	n.log.Info("elected leader", "key", lkey, "rev", lrev)
	n.metrics.terms.Inc()
	fence := clientv3.Compare(clientv3.CreateRevision(lkey), "=", lrev)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The key deleted (a resign, an operator) ends the leadership too.
	go func() {
		wch := n.cli.Watch(clientv3.WithRequireLeader(lctx), lkey, clientv3.WithRev(lrev+1))
		for wr := range wch {
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					n.log.Warn("leadership key deleted")
					cancel()
					return
				}
			}
		}
	}()

	exec := n.newDispatcher(lctx, fence)
	store, err := n.openStore(fence, func() {
		n.log.Error("a commit's outcome is unknown: leaving the leadership, so that the next leader starts from the store")
		cancel()
	})
	if err != nil {
		n.log.Error("open the cluster store", "err", err)
		n.resign(el)
		return
	}
	eo := n.opts.Engine
	eo.Store, eo.Paths, eo.Logger, eo.Executor = store, n.opts.Paths, n.log, exec
	// A run's environment is the variables' alone: the node that runs it
	// adds its own (runEnv).
	eo.Env = []string{}
	// A new leader runs each scheduled time the old one did not.
	eo.KeepBoundaries = max(time.Minute, 10*n.opts.TTL)
	eng := host.NewEngine(eo)
	if err := exec.start(eng); err != nil {
		n.log.Error("follow the runs", "err", err)
		store.Close()
		n.resign(el)
		return
	}
	if err := eng.Open(lctx); err != nil {
		exec.Close(context.Background())
		n.log.Error("open the engine", "err", err)
		store.Close()
		n.resign(el)
		return
	}
	exec.opened()
	n.mu.Lock()
	n.engine = eng
	n.notify()
	n.mu.Unlock()

	<-lctx.Done()

	n.mu.Lock()
	n.engine = nil
	n.notify()
	n.mu.Unlock()
	cctx, ccancel := context.WithTimeout(context.Background(), max(n.opts.Engine.Grace, 5*time.Second)+10*time.Second)
	defer ccancel()
	if err := eng.Close(cctx); err != nil {
		n.log.Warn("close the engine", "err", err)
	}
	if err := store.Close(); err != nil {
		n.log.Warn("close the cluster store", "err", err)
	}
	if n.cli.Ctx().Err() == nil {
		// Another node may lead now, rather than when the lease expires; a
		// lost session has nothing to give up.
		n.resign(el)
	}
	n.log.Info("no longer leader")
}

// resign gives the leadership up, so that another node is elected now
// rather than when the lease expires.
func (n *Node) resign(el *concurrency.Election) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := el.Resign(ctx); err != nil {
		n.log.Warn("resign", "err", err)
	}
}
