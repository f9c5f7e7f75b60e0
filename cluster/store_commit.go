package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
)

// Limits of one etcd transaction and of what the store keeps.
const (
	// maxTxnOps is etcd's default --max-txn-ops: the operations of one
	// transaction's branch.
	maxTxnOps = 128
	// maxTxnBytes bounds the keys and values of one transaction, well under
	// etcd's default --max-request-bytes (1.5 MiB), leaving room for the
	// compares and the request's framing.
	maxTxnBytes = 1 << 20
	// maxOutput bounds a run's stored output: the runner keeps its head and
	// tail within 128 KiB by default; a larger one is cut to its head and
	// tail again here.
	maxOutput = 256 << 10
	// trimPerCommit bounds the versions of one variable, and the run
	// records, that one commit deletes for retention (as persist does).
	trimPerCommit = 64
	// maxOpBytes bounds one key and value: in a journal part (JSON, the
	// value in base64) it stays under etcd's request limit.
	maxOpBytes = 768 << 10
)

// errStale is returned by write when the head moved: another writer
// committed since the view was loaded. Commit reloads and tries again.
var errStale = errors.New("store changed by another writer")

// kvOp is one key operation of a commit: a put, or a delete. A journal
// part stores a list of them.
type kvOp struct {
	Key string `json:"k"`
	Val []byte `json:"v,omitempty"`
	Del bool   `json:"d,omitempty"`
}

func (o kvOp) size() int { return len(o.Key) + len(o.Val) + 16 }

func (o kvOp) op() clientv3.Op {
	if o.Del {
		return clientv3.OpDelete(o.Key)
	}
	return clientv3.OpPut(o.Key, string(o.Val))
}

// seqRange is the sequences of a variable's stored versions, first..last;
// empty when last < first.
type seqRange struct{ first, last uint64 }

// runCount is the number of run records stored, and a serial below which
// there is none.
type runCount struct {
	n     int
	floor uint64
	// top is the highest serial with a record: a run above it is new
	// without asking etcd (serials grow).
	top uint64
}

// writerView is what the writer knows of the store, valid while the head
// key has the revision headRev: every write rewrites the head, so a write
// compared against headRev fails when anything changed since.
type writerView struct {
	valid   bool
	headRev int64  // the head's ModRevision, 0 when there is none
	step    uint64 // the step number in the head
	seqs    map[string]seqRange
	runs    runCount
	pending bool // a committed journal step may not be applied yet
}

// Commit writes b atomically, fenced: when it returns nil all of b is
// stored in etcd (replicated to a quorum), and when it returns an error
// nothing of b is stored, except for an error wrapping ErrOutcomeUnknown.
// A fence that fails gives an error wrapping ErrNotLeader. Retention is
// part of the commit, as in persist. A batch beyond one transaction's
// limits goes through the journal (docs/cluster.md); one key and value
// beyond maxOpBytes (a job state with a huge snapshot) is refused with an
// error wrapping whenlua.ErrStoreTooBig.
func (s *Store) Commit(b *whenlua.Batch) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := s.enter(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for attempt := 0; ; attempt++ {
		err := s.commitOnce(b)
		if err == nil {
			return nil
		}
		if errors.Is(err, errStale) && attempt < 3 {
			s.view.valid = false
			continue
		}
		return fmt.Errorf("commit: %w", err)
	}
}

func (s *Store) commitOnce(b *whenlua.Batch) error {
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return err
	}
	w := &builder{s: s, seqs: make(map[string]seqRange, len(b.Vars)), runs: s.view.runs}
	ops, err := w.build(ctx, b)
	if err != nil {
		return err
	}
	if err := s.write(ctx, ops); err != nil {
		return err
	}
	for name, r := range w.seqs {
		s.view.seqs[name] = r
	}
	s.view.runs = w.runs
	return nil
}

// ready makes the writer's view valid, with no journal step left to
// apply. The caller holds writeMu.
func (s *Store) ready(ctx context.Context) error {
	if s.view.valid && !s.view.pending {
		return nil
	}
	s.view.valid = false
	for range 5 {
		if err := s.applyJournal(ctx); err != nil {
			return err
		}
		end := clientv3.GetPrefixRangeEnd(s.k.runs)
		resp, err := s.cli.Txn(ctx).Then(
			clientv3.OpGet(s.k.head),
			clientv3.OpGet(s.k.runs, clientv3.WithRange(end), clientv3.WithCountOnly()),
			clientv3.OpGet(s.k.runs, clientv3.WithRange(end), clientv3.WithLimit(1), clientv3.WithKeysOnly(),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)),
			clientv3.OpGet(s.k.journal, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
			clientv3.OpGet(s.k.runs, clientv3.WithRange(end), clientv3.WithLimit(1), clientv3.WithKeysOnly(),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)),
		).Commit()
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if hasMarker(resp.Responses[3].GetResponseRange().Kvs) {
			continue // another writer committed a step meanwhile
		}
		v := writerView{valid: true, seqs: map[string]seqRange{}}
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
			v.headRev = kvs[0].ModRevision
			step, _, _ := strings.Cut(string(kvs[0].Value), " ")
			if v.step, err = strconv.ParseUint(step, 10, 64); err != nil {
				return fmt.Errorf("load: bad head %q", kvs[0].Value)
			}
		}
		v.runs.n = int(resp.Responses[1].GetResponseRange().Count)
		if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) == 1 {
			v.runs.floor, _ = serialOf(string(kvs[0].Key), s.k.runs)
		}
		if kvs := resp.Responses[4].GetResponseRange().Kvs; len(kvs) == 1 {
			v.runs.top, _ = serialOf(string(kvs[0].Key), s.k.runs)
		}
		s.view = v
		return nil
	}
	return errors.New("load: the journal keeps changing")
}

// write stores ops and a new head, fenced and checked against the view's
// head: in one transaction when they fit, else through the journal. The
// caller holds writeMu and has made the view ready.
func (s *Store) write(ctx context.Context, ops []kvOp) error {
	step := s.view.step + 1
	head := fmt.Sprintf("%d %s", step, newToken())
	cmps := append(s.fence(), clientv3.Compare(clientv3.ModRevision(s.k.head), "=", s.view.headRev))
	size := 0
	for _, o := range ops {
		if o.size() > maxOpBytes {
			return fmt.Errorf("%w: %s: %d bytes in one key, at most %d", whenlua.ErrStoreTooBig, o.Key, o.size(), maxOpBytes)
		}
		size += o.size()
	}
	if len(ops)+1 > s.opts.maxOps || size > s.opts.maxBytes {
		return s.writeJournal(ctx, step, head, cmps, ops)
	}
	then := make([]clientv3.Op, 0, len(ops)+1)
	for _, o := range ops {
		then = append(then, o.op())
	}
	then = append(then, clientv3.OpPut(s.k.head, head))
	var resp *clientv3.TxnResponse
	err := s.fault("send", ops)
	if err == nil {
		resp, err = s.cli.Txn(ctx).If(cmps...).Then(then...).Commit()
		if err == nil {
			err = s.fault("reply", ops)
		}
	}
	if refused := refusal(err); refused != nil {
		return refused
	}
	if err != nil {
		if err := s.settle(err, head); err != nil {
			return err
		}
		s.view.step = step
		return nil
	}
	if !resp.Succeeded {
		return s.refused(ctx)
	}
	s.view.headRev, s.view.step = resp.Header.Revision, step
	return nil
}

// fault returns the error tests inject at point, nil otherwise.
func (s *Store) fault(point string, ops []kvOp) error {
	if s.opts.fault == nil {
		return nil
	}
	return s.opts.fault(point, ops)
}

// writeJournal stores ops as the journal parts of step, each in its own
// transaction, then the step's marker and the head in one transaction:
// that transaction commits the step. Parts written without a marker are
// never read and are deleted later. Then it applies the step; an apply
// that fails is finished by the next write, and readers see the step as
// applied meanwhile.
func (s *Store) writeJournal(ctx context.Context, step uint64, head string, cmps []clientv3.Cmp, ops []kvOp) error {
	marker := s.k.markerKey(step)
	parts := splitOps(ops, s.opts.maxBytes/2, len(ops))
	var firstRev, lastRev int64
	for i, p := range parts {
		enc, err := encodeOps(p)
		if err != nil {
			return err
		}
		key := s.k.partKey(step, i)
		resp, err := s.cli.Txn(ctx).
			If(append(slices.Clone(cmps), clientv3.Compare(clientv3.CreateRevision(marker), "=", 0))...).
			Then(clientv3.OpPut(key, enc)).Commit()
		if refused := refusal(err); refused != nil {
			return refused
		}
		if errors.Is(err, rpctypes.ErrNoSpace) {
			return fmt.Errorf("journal part %d of %d: %w", i+1, len(parts), diskFull(err))
		}
		if err != nil {
			return fmt.Errorf("journal part %d of %d: %w", i+1, len(parts), err)
		}
		if !resp.Succeeded {
			return s.refused(ctx)
		}
		if i == 0 {
			firstRev = resp.Header.Revision
		}
		lastRev = resp.Header.Revision
	}
	// The step's parts are all still as written: none rewritten since (a
	// part is deleted only under the fence, by dropParts).
	stepKeys := s.k.stepPrefix(step)
	markerCmps := append(slices.Clone(cmps),
		clientv3.Compare(clientv3.ModRevision(stepKeys), ">", firstRev-1).WithPrefix(),
		clientv3.Compare(clientv3.ModRevision(stepKeys), "<", lastRev+1).WithPrefix())
	if err := s.fault("marker", ops); err != nil {
		return err
	}
	resp, err := s.cli.Txn(ctx).If(markerCmps...).
		Then(clientv3.OpPut(marker, strconv.Itoa(len(parts))), clientv3.OpPut(s.k.head, head)).Commit()
	if err == nil {
		err = s.fault("reply", ops)
	}
	if refused := refusal(err); refused != nil {
		return refused
	}
	if err != nil {
		if err := s.settle(err, head); err != nil {
			return err
		}
	} else {
		if !resp.Succeeded {
			return s.refused(ctx)
		}
		s.view.headRev = resp.Header.Revision
	}
	s.view.step = step
	s.view.pending = true
	if err := s.fault("apply", ops); err != nil {
		return err
	}
	if err := s.applyJournal(ctx); err != nil {
		s.log.Warn("cluster store: apply of a committed journal step left for the next write", "step", step, "err", err)
	}
	return nil
}

// splitOps cuts ops into lists of at most maxOps operations and about
// maxBytes bytes each.
func splitOps(ops []kvOp, maxBytes, maxOps int) [][]kvOp {
	var parts [][]kvOp
	var cur []kvOp
	size := 0
	for _, o := range ops {
		if len(cur) > 0 && (len(cur) >= maxOps || size+o.size() > maxBytes) {
			parts = append(parts, cur)
			cur, size = nil, 0
		}
		cur = append(cur, o)
		size += o.size()
	}
	if len(cur) > 0 {
		parts = append(parts, cur)
	}
	return parts
}

// refusal returns the store's error for an etcd error that refuses a
// write before it is applied, nil for any other: a transaction beyond
// etcd's limits (ErrTooBig).
func refusal(err error) error {
	if err != nil && (errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge)) {
		return fmt.Errorf("%w: %w", whenlua.ErrStoreTooBig, err)
	}
	return nil
}

func diskFull(err error) error {
	return fmt.Errorf("%w: etcd's database is at its quota: %w", whenlua.ErrDiskFull, err)
}

// settle finds out whether a write that failed with err was stored, and
// returns nil when it was. etcd answers a write that crosses its quota
// with NOSPACE after applying it, and refuses any later one; either way
// the answer is final, so reading the head tells (ErrDiskFull when the
// write is not stored: the maintenance goroutine compacts, defragments
// and disarms the alarm). Any other error is resolved by resolve.
func (s *Store) settle(err error, head string) error {
	if !errors.Is(err, rpctypes.ErrNoSpace) {
		return s.resolve(err, head)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	resp, gerr := s.cli.Get(ctx, s.k.head)
	if gerr != nil {
		s.view.valid = false
		return fmt.Errorf("%w: %w (then: %w)", ErrOutcomeUnknown, diskFull(err), gerr)
	}
	if len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == head {
		s.view.headRev = resp.Kvs[0].ModRevision
		return nil
	}
	return diskFull(err)
}

// refused tells why a write's compare failed: the fence (ErrNotLeader) or
// the head (errStale). Either way the view is stale.
func (s *Store) refused(ctx context.Context) error {
	s.view.valid = false
	fence := s.fence()
	if len(fence) == 0 {
		return errStale
	}
	resp, err := s.cli.Txn(ctx).If(fence...).Commit()
	if err != nil {
		return fmt.Errorf("%w: check the fence: %w", ErrNotLeader, err)
	}
	if !resp.Succeeded {
		return ErrNotLeader
	}
	return errStale
}

// resolve finds out whether a write that failed with err (a timeout, a
// lost connection) was stored: it writes a void head fenced by the old
// head's revision, which stops the write from ever applying later. When
// the void head is stored, the write was not; when the head holds the
// write's own head, it was. It returns nil when the write was stored.
func (s *Store) resolve(err error, head string) error {
	deadline := time.Now().Add(s.opts.CallTimeout)
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := s.ctx()
		void := fmt.Sprintf("%d %s", s.view.step, newToken())
		cmps := append(s.fence(), clientv3.Compare(clientv3.ModRevision(s.k.head), "=", s.view.headRev))
		var resp *clientv3.TxnResponse
		rerr := s.fault("void", nil)
		if rerr == nil {
			resp, rerr = s.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(s.k.head, void)).
				Else(clientv3.OpGet(s.k.head)).Commit()
		}
		cancel()
		if rerr == nil {
			if resp.Succeeded {
				s.view.headRev = resp.Header.Revision
				return err
			}
			kvs := resp.Responses[0].GetResponseRange().Kvs
			if len(kvs) == 1 && string(kvs[0].Value) == head {
				s.view.headRev = kvs[0].ModRevision
				return nil
			}
			s.view.valid = false
			var rev int64 // the head's revision, 0 when there is none
			if len(kvs) == 1 {
				rev = kvs[0].ModRevision
			}
			if rev == s.view.headRev {
				// The head is as before: the fence failed, so the write
				// was not stored and never will be.
				return err
			}
			// Another writer moved the head: the write cannot apply any
			// more, but it may have before, under what is there now.
			return fmt.Errorf("%w: %w (then the head moved)", ErrOutcomeUnknown, err)
		}
		if time.Now().Add(wait).After(deadline) || s.enter() != nil {
			s.view.valid = false
			return fmt.Errorf("%w: %w (then: %w)", ErrOutcomeUnknown, err, rerr)
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

func newToken() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// builder turns one batch into key operations, retention included, and
// keeps what it changes of the writer's view apart until it is stored.
type builder struct {
	s    *Store
	ops  []kvOp
	seqs map[string]seqRange
	runs runCount
}

func (w *builder) put(k string, v []byte) { w.ops = append(w.ops, kvOp{Key: k, Val: v}) }
func (w *builder) del(k string)           { w.ops = append(w.ops, kvOp{Key: k, Del: true}) }

// build returns the batch's operations, one per key (etcd refuses a
// transaction that writes a key twice: the last operation of a key wins).
func (w *builder) build(ctx context.Context, b *whenlua.Batch) ([]kvOp, error) {
	s := w.s
	if err := w.loadSeqs(ctx, b.Vars); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	var names []string
	seen := map[string]bool{}
	for _, c := range b.Vars {
		if !seen[c.Name] {
			seen[c.Name] = true
			names = append(names, c.Name)
		}
		r := w.seqs[c.Name]
		r.last++
		w.seqs[c.Name] = r
		t := c.Time
		if t.IsZero() {
			t = now
		}
		ver, err := encodeVersion(t, c.Origin, c.Mark, s.view.step+1, c.Value)
		if err != nil {
			return nil, err
		}
		w.put(s.k.histKey(c.Name, r.last), []byte(ver))
		if c.Value.IsNil() {
			w.del(s.k.varKey(c.Name))
		} else {
			w.put(s.k.varKey(c.Name), c.Value.AppendBinary(nil))
		}
	}
	for _, name := range names {
		r := w.seqs[name]
		for cut := min(whenlua.KeepFrom(r.first, r.last, s.opts.HistoryKeep), r.first+trimPerCommit); r.first < cut; r.first++ {
			w.del(s.k.histKey(name, r.first))
		}
		w.seqs[name] = r
	}
	jobs := make([]string, 0, len(b.JobStates))
	for j := range b.JobStates {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	for _, j := range jobs {
		st := b.JobStates[j]
		if st == nil {
			w.del(s.k.stateKey(j))
			continue
		}
		enc, err := encodeJobState(st)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", j, err)
		}
		w.put(s.k.stateKey(j), []byte(enc))
	}
	if err := w.putRuns(ctx, b.Runs); err != nil {
		return nil, err
	}
	for _, e := range b.Evals {
		enc, err := encodeEval(e)
		if err != nil {
			return nil, fmt.Errorf("evaluation of %s: %w", e.Job, err)
		}
		w.put(s.k.evalKey(e.Job, e.Seq), []byte(enc))
	}
	if b.Serial != 0 {
		w.put(s.k.serial, []byte(strconv.FormatUint(b.Serial, 10)))
	}
	return dedupe(w.ops), nil
}

// dedupe keeps the last operation of each key, in the order of their
// first operations.
func dedupe(ops []kvOp) []kvOp {
	last := make(map[string]int, len(ops))
	for i, o := range ops {
		last[o.Key] = i
	}
	if len(last) == len(ops) {
		return ops
	}
	out := make([]kvOp, 0, len(last))
	done := make(map[string]bool, len(last))
	for _, o := range ops {
		if done[o.Key] {
			continue
		}
		done[o.Key] = true
		out = append(out, ops[last[o.Key]])
	}
	return out
}

// loadSeqs reads the version ranges of the batch's variables the view
// does not hold: the first and last history key of each.
func (w *builder) loadSeqs(ctx context.Context, vars []whenlua.VarChange) error {
	s := w.s
	var missing []string
	for _, c := range vars {
		if _, ok := w.seqs[c.Name]; ok {
			continue
		}
		if r, ok := s.view.seqs[c.Name]; ok {
			w.seqs[c.Name] = r
			continue
		}
		w.seqs[c.Name] = seqRange{first: 1}
		missing = append(missing, c.Name)
	}
	for len(missing) > 0 {
		n := min(len(missing), s.opts.maxOps/2)
		chunk := missing[:n]
		missing = missing[n:]
		var gets []clientv3.Op
		for _, name := range chunk {
			p := s.k.histPrefix(name)
			gets = append(gets,
				clientv3.OpGet(p, clientv3.WithPrefix(), clientv3.WithLimit(1), clientv3.WithKeysOnly(),
					clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)),
				clientv3.OpGet(p, clientv3.WithPrefix(), clientv3.WithLimit(1), clientv3.WithKeysOnly(),
					clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)))
		}
		resp, err := s.cli.Txn(ctx).Then(gets...).Commit()
		if err != nil {
			return fmt.Errorf("read history ranges: %w", err)
		}
		for i, name := range chunk {
			lo := resp.Responses[2*i].GetResponseRange().Kvs
			hi := resp.Responses[2*i+1].GetResponseRange().Kvs
			if len(lo) == 0 || len(hi) == 0 {
				continue
			}
			first, ok1 := histSeq(string(lo[0].Key))
			last, ok2 := histSeq(string(hi[0].Key))
			if !ok1 || !ok2 {
				return fmt.Errorf("history of %s: bad key", name)
			}
			w.seqs[name] = seqRange{first: first, last: last}
		}
	}
	return nil
}

// putRuns writes the run records, counts the new ones and deletes the
// oldest finished ones past RunsKeep.
func (w *builder) putRuns(ctx context.Context, runs []whenlua.Run) error {
	if len(runs) == 0 {
		return nil
	}
	s := w.s
	exists, err := w.existing(ctx, runs)
	if err != nil {
		return err
	}
	batch := make(map[uint64]whenlua.Run, len(runs))
	for _, r := range runs {
		enc, err := encodeRun(r)
		if err != nil {
			return fmt.Errorf("run %d: %w", r.Serial, err)
		}
		if !exists[r.Serial] {
			exists[r.Serial] = true
			w.runs.n++
		}
		w.runs.top = max(w.runs.top, r.Serial)
		batch[r.Serial] = r
		w.put(s.k.runKey(r.Serial), []byte(enc))
		if len(r.Output) > 0 {
			w.put(s.k.outKey(r.Serial), boundOutput(r.Output))
		} else {
			w.del(s.k.outKey(r.Serial))
		}
	}
	if excess := w.runs.n - s.opts.RunsKeep; excess > 0 {
		ops, rc, err := s.trimRunsOps(ctx, w.runs, min(excess, trimPerCommit), 4*trimPerCommit, batch)
		if err != nil {
			return err
		}
		w.ops = append(w.ops, ops...)
		w.runs = rc
	}
	return nil
}

// existing tells which of the runs' serials have a stored record.
func (w *builder) existing(ctx context.Context, runs []whenlua.Run) (map[uint64]bool, error) {
	s := w.s
	out := make(map[uint64]bool, len(runs))
	var ask []whenlua.Run
	for _, r := range runs {
		if r.Serial <= w.runs.top {
			ask = append(ask, r)
		}
	}
	for i := 0; i < len(ask); i += s.opts.maxOps {
		chunk := ask[i:min(len(ask), i+s.opts.maxOps)]
		var gets []clientv3.Op
		for _, r := range chunk {
			gets = append(gets, clientv3.OpGet(s.k.runKey(r.Serial), clientv3.WithCountOnly()))
		}
		resp, err := s.cli.Txn(ctx).Then(gets...).Commit()
		if err != nil {
			return nil, fmt.Errorf("read runs: %w", err)
		}
		for j, r := range chunk {
			if resp.Responses[j].GetResponseRange().Count > 0 {
				out[r.Serial] = true
			}
		}
	}
	return out, nil
}

// trimRunsOps returns the deletes of up to n of the oldest run records
// that are not running or queued, with their output, passing over at most
// maxSkip of those; batch holds the records this commit writes, which
// stand for the stored ones. It returns the count after the deletes.
func (s *Store) trimRunsOps(ctx context.Context, rc runCount, n, maxSkip int, batch map[uint64]whenlua.Run) ([]kvOp, runCount, error) {
	end := clientv3.GetPrefixRangeEnd(s.k.runs)
	resp, err := s.cli.Get(ctx, s.k.runKey(rc.floor), clientv3.WithRange(end), clientv3.WithLimit(int64(n+maxSkip)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, rc, fmt.Errorf("read oldest runs: %w", err)
	}
	type cand struct {
		serial  uint64
		running bool
	}
	var cands []cand
	seen := map[uint64]bool{}
	var lastSerial uint64
	for _, kv := range resp.Kvs {
		serial, ok := serialOf(string(kv.Key), s.k.runs)
		if !ok {
			return nil, rc, fmt.Errorf("bad run key %q", kv.Key)
		}
		lastSerial = serial
		r, inBatch := batch[serial]
		if !inBatch {
			if r, err = decodeRun(kv.Value); err != nil {
				return nil, rc, fmt.Errorf("run %d: %w", serial, err)
			}
		}
		seen[serial] = true
		cands = append(cands, cand{serial, r.State == whenlua.RunRunning || r.State == whenlua.RunQueued})
	}
	for serial, r := range batch {
		if !seen[serial] && serial >= rc.floor && (!resp.More || serial < lastSerial) {
			cands = append(cands, cand{serial, r.State == whenlua.RunRunning || r.State == whenlua.RunQueued})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.serial, b.serial) })
	var ops []kvOp
	deleted, skipped, kept := 0, 0, false
	floor := uint64(0)
	for _, c := range cands {
		if deleted >= n || skipped >= maxSkip {
			break
		}
		if c.running {
			if !kept {
				floor, kept = c.serial, true
			}
			skipped++
			continue
		}
		ops = append(ops, kvOp{Key: s.k.runKey(c.serial), Del: true}, kvOp{Key: s.k.outKey(c.serial), Del: true})
		deleted++
		if !kept {
			floor = c.serial + 1
		}
	}
	rc.n -= deleted
	if deleted > 0 || kept {
		rc.floor = floor
	}
	return ops, rc, nil
}

// boundOutput returns out, or its head and tail with a line between them
// saying how much was left out when it is longer than maxOutput.
func boundOutput(out []byte) []byte {
	if len(out) <= maxOutput {
		return out
	}
	half := maxOutput/2 - 64
	mark := fmt.Sprintf("\n[... %d bytes not kept in the cluster store ...]\n", len(out)-2*half)
	b := make([]byte, 0, 2*half+len(mark))
	b = append(b, out[:half]...)
	b = append(b, mark...)
	return append(b, out[len(out)-half:]...)
}
