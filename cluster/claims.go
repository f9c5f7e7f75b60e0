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
//     (the job's on option). It stays until the run's keys are deleted.
//   - taken: that the offer was taken, once and for good: by the node that
//     claimed it, or withdrawn by the leader (no node claimed it in time,
//     or it was cancelled). It has no lease: a claim that lapses leaves it,
//     so a run is never claimed twice.
//   - claim: the node that runs it, under that node's session lease. One
//     transaction creates taken and claim, only while due exists and taken
//     does not.
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

// takenRecord is the value of taken: the node that claimed the run, or
// that the leader withdrew the offer.
type takenRecord struct {
	Node      string `json:"node,omitempty"`
	Withdrawn bool   `json:"withdrawn,omitempty"`
	Cancelled bool   `json:"cancelled,omitempty"` // withdrawn by a cancel
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

// runKey returns the key of part ("due", "taken", "claim", "done", "late") of the
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

// runKeys is what etcd holds of one run at one revision.
type runKeys struct {
	due   *offer
	taken *takenRecord
	claim *claimRecord
	done  *endRecord
	late  *endRecord
}

// readRuns reads the keys of every run at one revision; it returns them by
// serial, with that revision.
func (n *Node) readRuns(ctx context.Context) (map[uint64]*runKeys, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := n.cli.Get(ctx, n.key("run")+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("read the runs in etcd: %w", err)
	}
	out := map[uint64]*runKeys{}
	for _, kv := range resp.Kvs {
		serial, part, ok := n.parseRunKey(string(kv.Key))
		if !ok {
			continue
		}
		k := out[serial]
		if k == nil {
			k = &runKeys{}
			out[serial] = k
		}
		var err error
		switch part {
		case "due":
			k.due = &offer{}
			err = json.Unmarshal(kv.Value, k.due)
		case "taken":
			k.taken = &takenRecord{}
			err = json.Unmarshal(kv.Value, k.taken)
		case "claim":
			k.claim = &claimRecord{}
			err = json.Unmarshal(kv.Value, k.claim)
		case "done", "late":
			er := &endRecord{}
			err = json.Unmarshal(kv.Value, er)
			er.Result.Serial = serial
			if part == "done" {
				k.done = er
			} else {
				k.late = er
			}
		}
		if err != nil {
			n.log.Warn("a run's key that does not parse", "key", string(kv.Key), "err", err)
		}
	}
	return out, resp.Header.Revision, nil
}

// dispatcher is a leader's executor for one term: it offers runs to the
// nodes and follows their claims and ends through etcd.
type dispatcher struct {
	n      *Node
	fence  clientv3.Cmp
	eng    *host.Engine // for the late ends; set before the engine opens
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	ready  chan struct{} // closed once the engine adopted what it could

	// What etcd held when the term began, at revision rev: Adopt reads it,
	// and the watch follows every change after it.
	initial map[uint64]*runKeys
	rev     int64

	mu   sync.Mutex
	runs map[uint64]*remoteRun
}

// newDispatcher returns the executor of a term, fenced by fence; start
// begins to follow the runs.
func (n *Node) newDispatcher(ctx context.Context, fence clientv3.Cmp) *dispatcher {
	d := &dispatcher{n: n, fence: fence, done: make(chan struct{}), ready: make(chan struct{}), runs: map[uint64]*remoteRun{}}
	d.ctx, d.cancel = context.WithCancel(ctx)
	return d
}

// start reads the runs' keys, for eng, before eng opens and adopts the runs
// left running; the watch of what changes after waits for opened.
func (d *dispatcher) start(eng *host.Engine) error {
	d.eng = eng
	keys, rev, err := d.n.readRuns(d.ctx)
	if err != nil {
		d.cancel()
		close(d.done)
		return err
	}
	d.initial, d.rev = keys, rev
	go d.watch()
	return nil
}

// opened says the engine is open: the changes after the term began are
// applied to the runs it adopted; the keys of runs no longer recorded
// running (their end was committed, and the leader that committed it
// stopped before it deleted them) are deleted; late ends are recorded.
func (d *dispatcher) opened() {
	d.mu.Lock()
	var orphans []uint64
	for serial, k := range d.initial {
		if k.late != nil {
			go d.noteLate(*k.late)
		}
		if d.runs[serial] == nil && (k.due != nil || k.taken != nil || k.claim != nil || k.done != nil) {
			orphans = append(orphans, serial)
		}
	}
	d.initial = nil
	d.mu.Unlock()
	for _, serial := range orphans {
		go d.deleteKeys(serial)
	}
	close(d.ready)
}

// watch follows the runs' keys until the term ends.
func (d *dispatcher) watch() {
	defer close(d.done)
	select {
	case <-d.ready:
	case <-d.ctx.Done():
		return
	}
	rev := d.rev
	for d.ctx.Err() == nil {
		wch := d.n.cli.Watch(clientv3.WithRequireLeader(d.ctx), d.n.key("run")+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for wr := range wch {
			if err := wr.Err(); err != nil {
				d.n.log.Warn("watch the runs", "err", err)
				if wr.CompactRevision != 0 {
					// Events were compacted away: what they said is read
					// anew, and the watch goes on from there.
					if r, err := d.resync(); err == nil {
						rev = r
					}
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
	if r == nil {
		return
	}
	switch {
	case part == "claim" && put:
		var c claimRecord
		if json.Unmarshal(ev.Kv.Value, &c) == nil {
			r.claimedBy(c)
		}
	case part == "claim":
		// Its done would have come first: the claim lapsed with its
		// node's lease while the run went on.
		r.lapsed()
	case part == "done" && put:
		var er endRecord
		if json.Unmarshal(ev.Kv.Value, &er) == nil {
			er.Result.Serial = serial
			r.end(er.ended())
		}
	}
}

// resync reads the keys of every run anew, after a compaction made the
// watch miss some of their changes, and applies them to each run followed;
// it returns the revision read.
func (d *dispatcher) resync() (int64, error) {
	keys, rev, err := d.n.readRuns(d.ctx)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	runs := make([]*remoteRun, 0, len(d.runs))
	for _, r := range d.runs {
		runs = append(runs, r)
	}
	d.mu.Unlock()
	for _, r := range runs {
		k := keys[r.serial]
		if k == nil {
			k = &runKeys{}
		}
		r.apply(k, "its keys are gone")
	}
	for _, k := range keys {
		if k.late != nil {
			go d.noteLate(*k.late)
		}
	}
	return rev, nil
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

// deleteKeys deletes the keys of a run whose end is committed, fenced by
// the leadership; tried for a while when etcd does not answer. It is not
// bound to the term: an end committed as the term ends is cleaned up too.
func (d *dispatcher) deleteKeys(serial uint64) {
	n := d.n
	wait := 100 * time.Millisecond
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := n.cli.Txn(ctx).If(d.fence).Then(
			clientv3.OpDelete(n.runKey(serial, "due")),
			clientv3.OpDelete(n.runKey(serial, "taken")),
			clientv3.OpDelete(n.runKey(serial, "claim")),
			clientv3.OpDelete(n.runKey(serial, "done")),
		).Commit()
		cancel()
		if err == nil || n.cli.Ctx().Err() != nil {
			return
		}
		if try == 10 {
			// The next leader deletes them when it begins.
			n.log.Warn("delete the keys of a recorded run", "serial", serial, "err", err)
			return
		}
		sleep(n.cli.Ctx(), wait)
		wait = min(2*wait, 2*time.Second)
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
	r.offering = true
	err = d.putOffer(ctx, spec.Serial, string(val))
	r.mu.Lock()
	r.offering = false
	r.mu.Unlock()
	switch {
	case errors.Is(err, ErrNotLeader):
		d.forget(r)
		return nil, fmt.Errorf("offer the run to the nodes: %w", err)
	case err != nil:
		// Whether it was stored is not known: if it was, a node may claim
		// it; if not, the withdrawal ends the run not started.
		d.n.log.Warn("offer a run: its outcome is unknown", "serial", spec.Serial, "err", err)
	}
	r.waitForClaim()
	return r, nil
}

// putOffer puts the offer of the run serial, fenced by the leadership. A
// reply lost (etcd changing its leader under the call) leaves the outcome
// unknown: the offer is put again unless it is there, which says an earlier
// try stored it (it stays until the run's keys are deleted). The error is
// ErrNotLeader when the fence failed, another when the outcome is unknown.
func (d *dispatcher) putOffer(ctx context.Context, serial uint64, val string) error {
	n := d.n
	due := n.runKey(serial, "due")
	wait := 100 * time.Millisecond
	for {
		resp, err := n.cli.Txn(ctx).
			If(d.fence, clientv3.Compare(clientv3.CreateRevision(due), "=", 0)).
			Then(clientv3.OpPut(due, val)).
			Else(clientv3.OpGet(due, clientv3.WithCountOnly())).Commit()
		switch {
		case err == nil && resp.Succeeded:
			return nil
		case err == nil && resp.Responses[0].GetResponseRange().Count > 0:
			return nil // an earlier try stored it
		case err == nil:
			return ErrNotLeader
		case ctx.Err() != nil:
			return err
		}
		sleep(ctx, wait)
		wait = min(2*wait, time.Second)
	}
}

// Adopt implements host.Executor: a run recorded running is followed again
// when a node holds its claim, its end is stored, or its offer waits, as
// etcd held them when the term began.
func (d *dispatcher) Adopt(rec whenlua.Run, ev host.ExecEvents) (host.Process, string) {
	k := d.initial[rec.Serial]
	if k == nil {
		if rec.Node == "" {
			return nil, "the leader stopped before a node claimed it"
		}
		return nil, fmt.Sprintf("node %s stopped while it ran, with no leader to see it", rec.Node)
	}
	r := d.track(rec.Serial, "", ev)
	r.claim.Node = rec.Node
	if !r.apply(k, "") {
		d.forget(r)
		return nil, r.lostWhy
	}
	return r, ""
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
	ev        host.ExecEvents
	claimedCh chan struct{} // closed once claimed or reported

	mu       sync.Mutex
	on       string
	claim    claimRecord
	claimed  bool
	chClosed bool
	reported bool   // its end went to the engine
	offering bool   // its offer is being put: a read may not show it yet
	lostWhy  string // set by apply when nothing is left of it
	timer    *time.Timer
}

var _ host.Process = (*remoteRun)(nil)

// apply takes what etcd holds of the run (read at one revision): it
// reports whether the run goes on or its end is known. When nothing is
// left of it, with gone set, the run ends lost for that reason; with gone
// "", it is left to the caller (lostWhy says why).
func (r *remoteRun) apply(k *runKeys, gone string) bool {
	n := r.d.n
	switch {
	case k.done != nil:
		// Not on this goroutine: the engine may not take ends yet.
		go r.end(k.done.ended())
	case k.claim != nil:
		r.claimedBy(*k.claim)
	case k.taken != nil && k.taken.Withdrawn && k.taken.Cancelled:
		go r.end(host.Ended{Result: runner.Result{Serial: r.serial, Code: -1, Cancelled: true}, NotStarted: "cancelled before a node claimed it"})
	case k.taken != nil && k.taken.Withdrawn:
		go r.end(host.Ended{Result: runner.Result{Serial: r.serial, Code: -1}, NotStarted: "withdrawn: no node claimed it"})
	case k.taken != nil:
		r.mu.Lock()
		r.claim.Node = k.taken.Node
		r.mu.Unlock()
		r.lostWhy = fmt.Sprintf("node %s stopped answering while it ran (its lease expired)", k.taken.Node)
		if gone == "" {
			return false
		}
		go r.lapsed()
	case k.due != nil:
		r.mu.Lock()
		r.on = k.due.On
		r.mu.Unlock()
		if o := *k.due; o.On == whenlua.OnLeader && o.Leader != n.opts.Node {
			// Offered to the leader before this one: to this one now.
			o.Leader = n.opts.Node
			val, _ := json.Marshal(o)
			ctx, cancel := context.WithTimeout(r.d.ctx, 10*time.Second)
			taken := n.runKey(r.serial, "taken")
			if _, err := n.cli.Txn(ctx).If(r.d.fence, clientv3.Compare(clientv3.CreateRevision(taken), "=", 0)).
				Then(clientv3.OpPut(n.runKey(r.serial, "due"), string(val))).Commit(); err != nil {
				n.log.Warn("offer a run to this leader", "serial", r.serial, "err", err)
			}
			cancel()
		}
		r.waitForClaim()
	default:
		r.lostWhy = "the leader stopped before a node claimed it"
		r.mu.Lock()
		offering := r.offering
		r.mu.Unlock()
		if offering {
			return true // its offer lands next; or the withdrawal settles it
		}
		if gone == "" {
			return false
		}
		go r.end(host.Ended{Result: runner.Result{Serial: r.serial, Code: -1}, Lost: gone})
	}
	return true
}

func (r *remoteRun) closeClaimedLocked() {
	if !r.chClosed {
		r.chClosed = true
		close(r.claimedCh)
	}
}

// claimedBy records the claim c: the node that runs it, and its process
// once started.
func (r *remoteRun) claimedBy(c claimRecord) {
	r.mu.Lock()
	r.claim, r.claimed = c, true
	r.closeClaimedLocked()
	reported := r.reported
	r.mu.Unlock()
	r.stopWaiting()
	if !reported {
		r.ev.Started(c.PID, c.Dir, c.Node)
	}
}

// lapsed ends the run lost: its claim lapsed with its node's lease.
func (r *remoteRun) lapsed() {
	r.mu.Lock()
	node := r.claim.Node
	r.mu.Unlock()
	r.end(host.Ended{Result: runner.Result{Serial: r.serial, Code: -1}, Node: node,
		Lost: fmt.Sprintf("node %s stopped answering while it ran (its lease expired)", node)})
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

// withdraw takes the offer back if no node took it; the run then ends not
// started.
func (r *remoteRun) withdraw() { r.withdrawAs(false) }

// withdrawAs takes the offer back, for a cancel or because no node claimed
// it in time; it reports whether it did (or an earlier try whose reply was
// lost did).
func (r *remoteRun) withdrawAs(cancelled bool) bool {
	n := r.d.n
	ctx, cancel := context.WithTimeout(r.d.ctx, 10*time.Second)
	defer cancel()
	taken, due := n.runKey(r.serial, "taken"), n.runKey(r.serial, "due")
	val, _ := json.Marshal(takenRecord{Withdrawn: true, Cancelled: cancelled})
	resp, err := n.cli.Txn(ctx).If(r.d.fence, clientv3.Compare(clientv3.CreateRevision(taken), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(due), ">", 0)).
		Then(clientv3.OpPut(taken, string(val))).
		Else(clientv3.OpGet(taken), clientv3.OpGet(due, clientv3.WithCountOnly())).Commit()
	if err != nil {
		if r.d.ctx.Err() == nil && !cancelled {
			n.log.Warn("withdraw an offer no node claimed", "serial", r.serial, "err", err)
			r.mu.Lock()
			r.timer = time.AfterFunc(time.Second, r.withdraw)
			r.mu.Unlock()
		}
		return false
	}
	r.mu.Lock()
	why := fmt.Sprintf("no node claimed it within %v (on = %q)", n.claimWait(), r.on)
	r.mu.Unlock()
	if !resp.Succeeded {
		var t takenRecord
		kvs := resp.Responses[0].GetResponseRange().Kvs
		switch {
		case len(kvs) == 1 && json.Unmarshal(kvs[0].Value, &t) == nil && t.Withdrawn:
			// An earlier try whose reply was lost withdrew it.
		case len(kvs) == 0 && resp.Responses[1].GetResponseRange().Count == 0:
			// No offer and no taken: the offer never landed (its put's
			// outcome was unknown), or its keys are gone with its end.
			why = "its offer was not stored"
		default:
			return false // a node took it, or no longer leader
		}
	}
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

// Cancel implements host.Process: an offer not taken yet is withdrawn; a
// claimed run is cancelled by its node.
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
			r.d.n.log.Warn("cancel a run on its node", "serial", r.serial, "on", c.Node, "err", err)
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
// go (and with them, on its node, its directory). It returns at once.
func (r *remoteRun) Cleanup() error {
	r.d.forget(r)
	go r.d.deleteKeys(r.serial)
	return nil
}
