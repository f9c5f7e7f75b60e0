package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host"
	"github.com/whenlua/whenlua/host/runner"
)

// A run's life in etcd, under c/run/<serial>/ (the serial in 16 hex digits):
//
//   - due: the leader's offer, put in a transaction fenced by its
//     leadership once the run's start is committed: what to run, and where
//     (the job's on option).
//   - claim: the node that runs it, under that node's session lease. One
//     transaction deletes due and creates claim, and only while due exists
//     and claim does not: a run is claimed once, by one node.
//   - done: how it ended, put by the claiming node in a transaction fenced
//     by its claim (the claim's create revision), so a node whose lease
//     lapsed (dead, paused, cut off) reports nothing into a run the leader
//     recorded lost; it puts late instead, which the leader adds to the
//     lost run's record.
//
// The leader watches these keys: a claim records the run's node, a done its
// end; a claim deleted without a done (its lease expired) records the run
// lost. Once a run's end is committed the leader deletes its keys, fenced
// by its leadership; the claiming node then removes the run's directory.

// offer is a due run, as the leader puts it.
type offer struct {
	Serial  uint64        `json:"serial"`
	Job     string        `json:"job"`
	On      string        `json:"on"`
	Leader  string        `json:"leader"` // the node that offered it, for on = "leader"
	Script  string        `json:"script"`
	Shell   string        `json:"shell"`
	Env     []string      `json:"env"` // the run's own variables; the node adds its environment
	Timeout time.Duration `json:"timeout"`
}

// claimRecord is the value of a claim: the node, and the process once it
// started.
type claimRecord struct {
	Node string `json:"node"`
	Addr string `json:"addr"`
	PID  int    `json:"pid,omitempty"`
	Dir  string `json:"dir,omitempty"`
}

// endRecord is the value of done and late: how the run ended on its node.
type endRecord struct {
	Node       string        `json:"node"`
	Result     runner.Result `json:"result"`
	Stopped    bool          `json:"stopped,omitempty"`
	NotStarted string        `json:"not_started,omitempty"`
}

func (r endRecord) ended() host.Ended {
	return host.Ended{Result: r.Result, Node: r.Node, Stopped: r.Stopped, NotStarted: r.NotStarted}
}

// runKey returns the key of part ("due", "claim", "done", "late") of the
// run serial, or the prefix of its keys when part is "".
func (n *Node) runKey(serial uint64, part string) string {
	return n.key("run", fmt.Sprintf("%016x", serial)) + "/" + part
}

// parseRunKey splits a key under c/run/ into its serial and part.
func (n *Node) parseRunKey(k string) (uint64, string, bool) {
	rest, ok := strings.CutPrefix(k, n.key("run")+"/")
	if !ok {
		return 0, "", false
	}
	hex, part, ok := strings.Cut(rest, "/")
	serial, err := strconv.ParseUint(hex, 16, 64)
	return serial, part, ok && err == nil
}

// claimWait is how long an offer may wait for a node to claim it before it
// is withdrawn and its run recorded not started: long enough for a node
// that was just elected or restarted to watch, short enough that a run on
// a node that is gone does not hang.
func (n *Node) claimWait() time.Duration { return max(3*n.opts.TTL, 10*time.Second) }

// dispatcher is a leader's executor for one term: it offers runs to the
// nodes and follows their claims and ends through etcd.
type dispatcher struct {
	n      *Node
	fence  clientv3.Cmp
	eng    *host.Engine // for the late ends; set before the engine opens
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	runs map[uint64]*remoteRun
}

// newDispatcher returns the executor of a term, fenced by fence; start
// begins to follow the runs.
func (n *Node) newDispatcher(ctx context.Context, fence clientv3.Cmp) *dispatcher {
	d := &dispatcher{n: n, fence: fence, done: make(chan struct{}), runs: map[uint64]*remoteRun{}}
	d.ctx, d.cancel = context.WithCancel(ctx)
	return d
}

// start follows the runs' keys from now on, for eng, before eng opens (and
// adopts the runs left running). Late ends already stored go to eng first.
func (d *dispatcher) start(eng *host.Engine) error {
	d.eng = eng
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	resp, err := d.n.cli.Get(ctx, d.n.key("run")+"/", clientv3.WithPrefix())
	if err != nil {
		d.cancel()
		close(d.done)
		return fmt.Errorf("read the runs in etcd: %w", err)
	}
	var late []endRecord
	for _, kv := range resp.Kvs {
		if serial, part, ok := d.n.parseRunKey(string(kv.Key)); ok && part == "late" {
			var er endRecord
			if json.Unmarshal(kv.Value, &er) == nil {
				er.Result.Serial = serial
				late = append(late, er)
			}
		}
	}
	go d.watch(resp.Header.Revision, late)
	return nil
}

// watch follows the runs' keys until the term ends; it first hands the late
// ends already stored to the engine.
func (d *dispatcher) watch(rev int64, late []endRecord) {
	defer close(d.done)
	for _, er := range late {
		go d.noteLate(er)
	}
	for d.ctx.Err() == nil {
		wch := d.n.cli.Watch(clientv3.WithRequireLeader(d.ctx), d.n.key("run")+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wch {
			if err := wr.Err(); err != nil {
				d.n.log.Warn("watch the runs", "err", err)
				if wr.CompactRevision != 0 {
					// Events were compacted away: what they said is read anew.
					rev = d.resync(rev)
				}
				break
			}
			for _, ev := range wr.Events {
				d.event(ev)
				rev = ev.Kv.ModRevision
			}
		}
		sleep(d.ctx, 100*time.Millisecond)
	}
}

// event applies one change of a run's keys.
func (d *dispatcher) event(ev *clientv3.Event) {
	serial, part, ok := d.n.parseRunKey(string(ev.Kv.Key))
	if !ok {
		return
	}
	put := ev.Type == clientv3.EventTypePut
	if part == "late" && put {
		var er endRecord
		if json.Unmarshal(ev.Kv.Value, &er) == nil {
			er.Result.Serial = serial
			go d.noteLate(er)
		}
		return
	}
	d.mu.Lock()
	r := d.runs[serial]
	d.mu.Unlock()
	if r == nil || ev.Kv.ModRevision <= r.seen {
		return
	}
	switch {
	case part == "claim" && put:
		var c claimRecord
		if json.Unmarshal(ev.Kv.Value, &c) != nil {
			return
		}
		r.mu.Lock()
		r.claim, r.claimed = c, true
		r.closeClaimedLocked()
		ended := r.reported
		r.mu.Unlock()
		r.stopWaiting()
		if !ended {
			r.ev.Started(c.PID, c.Dir, c.Node)
		}
	case part == "claim":
		// Its done would have come first: the claim lapsed with its
		// node's lease while the run went on.
		r.mu.Lock()
		node := r.claim.Node
		r.mu.Unlock()
		r.end(host.Ended{Result: runner.Result{Serial: serial}, Node: node,
			Lost: fmt.Sprintf("node %s stopped answering while it ran (its lease expired)", node)})
	case part == "done" && put:
		var er endRecord
		if json.Unmarshal(ev.Kv.Value, &er) != nil {
			return
		}
		er.Result.Serial = serial
		r.end(er.ended())
	}
}

// resync reads the keys of every run followed, after a compaction made the
// watch miss some of their changes; it returns the revision read.
func (d *dispatcher) resync(rev int64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.runs {
		if err := r.read(d.ctx); err != nil {
			d.n.log.Warn("read a run's keys again", "serial", r.serial, "err", err)
			continue
		}
		rev = max(rev, r.seen)
	}
	return rev
}

// noteLate adds a late end to its run's record, then deletes it. The run
// may not be recorded lost yet (its claim lapsed a moment ago): it tries
// again a few times.
func (d *dispatcher) noteLate(er endRecord) {
	serial := er.Result.Serial
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
		err := d.eng.NoteLateEnd(ctx, er.ended())
		if err == nil || errors.Is(err, whenlua.ErrNotFound) {
			_, err = d.n.cli.Txn(ctx).If(d.fence).Then(clientv3.OpDelete(d.n.runKey(serial, "late"))).Commit()
			cancel()
			if err != nil {
				d.n.log.Warn("delete a late end", "serial", serial, "err", err)
			}
			return
		}
		cancel()
		if !errors.Is(err, whenlua.ErrConflict) || try == 20 || d.ctx.Err() != nil {
			d.n.log.Warn("record a late end", "serial", serial, "err", err)
			return
		}
		sleep(d.ctx, 250*time.Millisecond)
	}
}

// Start implements host.Executor: it offers the run. A run for a node that
// is not live fails at once; one that no node claims within claimWait ends
// not started.
func (d *dispatcher) Start(spec runner.Spec, on string, ev host.ExecEvents) (host.Process, error) {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	if on != whenlua.OnAny && on != whenlua.OnLeader && on != "" {
		resp, err := d.n.cli.Get(ctx, d.n.key("nodes", on), clientv3.WithCountOnly())
		if err != nil {
			return nil, fmt.Errorf("read the live nodes: %w", err)
		}
		if resp.Count == 0 {
			return nil, fmt.Errorf("no live node is named %s (the job's on option)", on)
		}
	}
	if on == "" {
		on = whenlua.OnAny
	}
	val, err := json.Marshal(offer{Serial: spec.Serial, Job: spec.Job, On: on, Leader: d.n.opts.Node,
		Script: spec.Script, Shell: spec.Shell, Env: spec.Env, Timeout: spec.Timeout})
	if err != nil {
		return nil, err
	}
	r := d.track(spec.Serial, on, ev)
	if err := d.putOffer(ctx, spec.Serial, string(val)); err != nil {
		d.forget(r)
		return nil, fmt.Errorf("offer the run to the nodes: %w", err)
	}
	r.waitForClaim()
	return r, nil
}

// putOffer puts the offer of the run serial, fenced by the leadership. A
// reply lost (etcd changing its leader under the call) leaves the outcome
// unknown: the offer is put again, unless a node has claimed it since,
// which says the first one was stored.
func (d *dispatcher) putOffer(ctx context.Context, serial uint64, val string) error {
	n := d.n
	due, ck, dk := n.runKey(serial, "due"), n.runKey(serial, "claim"), n.runKey(serial, "done")
	wait := 100 * time.Millisecond
	for {
		resp, err := n.cli.Txn(ctx).
			If(d.fence, clientv3.Compare(clientv3.CreateRevision(ck), "=", 0), clientv3.Compare(clientv3.CreateRevision(dk), "=", 0)).
			Then(clientv3.OpPut(due, val)).
			Else(clientv3.OpGet(ck, clientv3.WithCountOnly()), clientv3.OpGet(dk, clientv3.WithCountOnly())).Commit()
		switch {
		case err == nil && resp.Succeeded:
			return nil
		case err == nil && (resp.Responses[0].GetResponseRange().Count > 0 || resp.Responses[1].GetResponseRange().Count > 0):
			return nil // an earlier try was stored, and claimed since
		case err == nil:
			return ErrNotLeader
		case ctx.Err() != nil:
			return err
		}
		n.log.Warn("offer a run: trying again", "serial", serial, "err", err)
		sleep(ctx, wait)
		wait = min(2*wait, time.Second)
	}
}

// Adopt implements host.Executor: a run recorded running is followed again
// when a node holds its claim, its end is stored, or its offer waits.
func (d *dispatcher) Adopt(rec whenlua.Run, ev host.ExecEvents) (host.Process, string) {
	r := d.track(rec.Serial, "", ev)
	r.claim.Node = rec.Node
	// Events are held back until the keys are read: those older than what
	// read saw are then dropped.
	d.mu.Lock()
	err := r.read(d.ctx)
	d.mu.Unlock()
	if err != nil {
		d.forget(r)
		return nil, fmt.Sprintf("its keys in etcd could not be read: %v", err)
	}
	r.mu.Lock()
	lost := !r.claimed && !r.offered && !r.hasEnd
	r.mu.Unlock()
	if !lost {
		return r, ""
	}
	d.forget(r)
	if rec.Node == "" {
		return nil, "the leader stopped before a node claimed it"
	}
	return nil, fmt.Sprintf("node %s stopped while it ran, with no leader to see it", rec.Node)
}

func (d *dispatcher) StopStray(string, int) int { return 0 }

// Close implements host.Executor: the runs go on on their nodes; the next
// leader adopts them.
func (d *dispatcher) Close(ctx context.Context) error {
	d.cancel()
	d.mu.Lock()
	for _, r := range d.runs {
		r.stopWaiting()
	}
	d.mu.Unlock()
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *dispatcher) track(serial uint64, on string, ev host.ExecEvents) *remoteRun {
	if ev.Started == nil {
		ev.Started = func(int, string, string) {}
	}
	r := &remoteRun{d: d, serial: serial, on: on, ev: ev, claimedCh: make(chan struct{})}
	d.mu.Lock()
	d.runs[serial] = r
	d.mu.Unlock()
	return r
}

func (d *dispatcher) forget(r *remoteRun) {
	d.mu.Lock()
	if d.runs[r.serial] == r {
		delete(d.runs, r.serial)
	}
	d.mu.Unlock()
	r.stopWaiting()
}

// remoteRun is a run offered to the nodes, as the leader follows it.
type remoteRun struct {
	d         *dispatcher
	serial    uint64
	on        string
	ev        host.ExecEvents
	seen      int64         // events up to this revision are in what read saw
	claimedCh chan struct{} // closed once claimed or reported

	mu       sync.Mutex
	claim    claimRecord
	claimed  bool
	chClosed bool
	offered  bool // read found its due key
	hasEnd   bool // read found its done key
	reported bool // its end went to the engine
	timer    *time.Timer
}

var _ host.Process = (*remoteRun)(nil)

// read reads the run's keys and takes what they say; the events up to
// that revision are then dropped. d.mu held.
func (r *remoteRun) read(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := r.d.n.cli.Get(ctx, r.d.n.runKey(r.serial, ""), clientv3.WithPrefix())
	if err != nil {
		return err
	}
	r.seen = resp.Header.Revision
	parts := map[string][]byte{}
	for _, kv := range resp.Kvs {
		if _, part, ok := r.d.n.parseRunKey(string(kv.Key)); ok {
			parts[part] = kv.Value
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := parts["claim"]; ok && json.Unmarshal(v, &r.claim) == nil {
		r.claimed = true
		r.closeClaimedLocked()
	}
	if v, ok := parts["done"]; ok {
		var er endRecord
		if json.Unmarshal(v, &er) == nil {
			er.Result.Serial = r.serial
			r.hasEnd = true
			// Not on this goroutine: the engine may not take ends yet.
			go r.end(er.ended())
			return nil
		}
	}
	if v, ok := parts["due"]; ok && !r.claimed {
		r.offered = true
		var o offer
		if json.Unmarshal(v, &o) == nil {
			r.on = o.On
			if o.On == whenlua.OnLeader && o.Leader != r.d.n.opts.Node {
				// Offered to the leader before this one: to this one now.
				o.Leader = r.d.n.opts.Node
				val, _ := json.Marshal(o)
				due := r.d.n.runKey(r.serial, "due")
				if _, err := r.d.n.cli.Txn(ctx).If(r.d.fence, clientv3.Compare(clientv3.CreateRevision(due), ">", 0)).
					Then(clientv3.OpPut(due, string(val))).Commit(); err != nil {
					r.d.n.log.Warn("offer a run to this leader", "serial", r.serial, "err", err)
				}
			}
		}
		r.waitForClaimLocked()
	}
	return nil
}

func (r *remoteRun) closeClaimedLocked() {
	if !r.chClosed {
		r.chClosed = true
		close(r.claimedCh)
	}
}

// end reports the run's end to the engine, once.
func (r *remoteRun) end(e host.Ended) {
	r.mu.Lock()
	if r.reported {
		r.mu.Unlock()
		return
	}
	r.reported = true
	r.closeClaimedLocked()
	r.mu.Unlock()
	r.stopWaiting()
	r.ev.Done(e)
}

// waitForClaim withdraws the offer when no node claimed it in time.
func (r *remoteRun) waitForClaim() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waitForClaimLocked()
}

func (r *remoteRun) waitForClaimLocked() {
	if r.timer == nil && !r.claimed && !r.reported {
		r.timer = time.AfterFunc(r.d.n.claimWait(), r.withdraw)
	}
}

func (r *remoteRun) stopWaiting() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
	}
}

// withdraw deletes the offer if no node claimed it; the run then ends not
// started (or cancelled).
func (r *remoteRun) withdraw() { r.withdrawAs(false) }

func (r *remoteRun) withdrawAs(cancelled bool) bool {
	n := r.d.n
	ctx, cancel := context.WithTimeout(r.d.ctx, 10*time.Second)
	defer cancel()
	due, ck, dk := n.runKey(r.serial, "due"), n.runKey(r.serial, "claim"), n.runKey(r.serial, "done")
	resp, err := n.cli.Txn(ctx).If(r.d.fence, clientv3.Compare(clientv3.CreateRevision(due), ">", 0)).
		Then(clientv3.OpDelete(due)).
		Else(clientv3.OpGet(ck, clientv3.WithCountOnly()), clientv3.OpGet(dk, clientv3.WithCountOnly())).Commit()
	switch {
	case err != nil:
		if r.d.ctx.Err() == nil && !cancelled {
			n.log.Warn("withdraw an offer no node claimed", "serial", r.serial, "err", err)
			r.mu.Lock()
			r.timer = time.AfterFunc(time.Second, r.withdraw)
			r.mu.Unlock()
		}
		return false
	case !resp.Succeeded && (resp.Responses[0].GetResponseRange().Count > 0 || resp.Responses[1].GetResponseRange().Count > 0):
		return false // claimed meanwhile
	}
	// Withdrawn now, or by an earlier try whose reply was lost (or no
	// longer leader: the end is then not committed).
	why := fmt.Sprintf("no node claimed it within %v (on = %q)", n.claimWait(), r.on)
	if cancelled {
		why = "cancelled before a node claimed it"
	}
	r.end(host.Ended{Result: runner.Result{Serial: r.serial, Cancelled: cancelled, Code: -1}, NotStarted: why})
	return true
}

// PID implements host.Process: the shell's pid on its node, 0 until known.
func (r *remoteRun) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.claim.PID
}

// Dir implements host.Process: the run directory on its node.
func (r *remoteRun) Dir() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.claim.Dir
}

// Cancel implements host.Process: an offer not claimed yet is withdrawn;
// a claimed run is cancelled by its node.
func (r *remoteRun) Cancel() {
	go func() {
		if r.withdrawAs(true) {
			return
		}
		ctx, cancel := context.WithTimeout(r.d.ctx, 30*time.Second)
		defer cancel()
		select {
		case <-r.claimedCh:
		case <-ctx.Done():
			return
		}
		r.mu.Lock()
		c, claimed, reported := r.claim, r.claimed, r.reported
		r.mu.Unlock()
		if !claimed || reported {
			return
		}
		if err := r.d.n.cancelOn(ctx, c, r.serial); err != nil {
			r.d.n.log.Warn("cancel a run on its node", "serial", r.serial, "node", c.Node, "err", err)
		}
	}()
}

// Tail implements host.Process: the run's output, from the node that runs
// it, once a node claimed it.
func (r *remoteRun) Tail(ctx context.Context, w io.Writer) error {
	select {
	case <-r.claimedCh:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	c, claimed := r.claim, r.claimed
	r.mu.Unlock()
	if !claimed {
		return fmt.Errorf("run %d ended unclaimed: %w", r.serial, os.ErrClosed)
	}
	err := r.d.n.tailOn(ctx, c, r.serial, w)
	if errors.Is(err, whenlua.ErrNotFound) {
		return fmt.Errorf("run %d is gone from node %s: %w", r.serial, c.Node, os.ErrClosed)
	}
	return err
}

// Cleanup implements host.Process: the run's end is committed, its keys
// go (and with them, on its node, its directory). It returns at once; the
// delete is tried for a while when etcd does not answer.
func (r *remoteRun) Cleanup() error {
	r.d.forget(r)
	n := r.d.n
	go func() {
		wait := 100 * time.Millisecond
		for try := 0; ; try++ {
			ctx, cancel := context.WithTimeout(r.d.ctx, 10*time.Second)
			_, err := n.cli.Txn(ctx).If(r.d.fence).Then(
				clientv3.OpDelete(n.runKey(r.serial, "due")),
				clientv3.OpDelete(n.runKey(r.serial, "claim")),
				clientv3.OpDelete(n.runKey(r.serial, "done")),
			).Commit()
			cancel()
			if err == nil || r.d.ctx.Err() != nil {
				return
			}
			if try == 10 {
				n.log.Warn("delete the keys of a recorded run", "serial", r.serial, "err", err)
				return
			}
			sleep(r.d.ctx, wait)
			wait = min(2*wait, 2*time.Second)
		}
	}()
	return nil
}
