package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
)

// scanPage is how many keys one read of a scan returns.
const scanPage = 256

// rollForward makes the writer's view ready at Open: it applies a
// committed journal step a stopped writer left.
func (s *Store) rollForward() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	ctx, cancel := s.ctx()
	defer cancel()
	return s.ready(ctx)
}

// kv is one key and value read.
type kv struct {
	key string
	val []byte
}

// get reads keys at one revision, with the committed journal steps
// applied; a missing key gives a nil value.
func (s *Store) get(ctx context.Context, keys ...string) ([][]byte, error) {
	ops := []clientv3.Op{clientv3.OpGet(s.k.journal, clientv3.WithPrefix())}
	for _, k := range keys {
		ops = append(ops, clientv3.OpGet(k))
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	ov, err := s.overlayOf(resp.Responses[0].GetResponseRange().Kvs)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if o, ok := ov[k]; ok {
			if !o.Del {
				out[i] = o.Val
			}
			continue
		}
		if kvs := resp.Responses[i+1].GetResponseRange().Kvs; len(kvs) == 1 {
			out[i] = kvs[0].Value
		}
	}
	return out, nil
}

// scan calls fn with the keys under prefix and their values, in key order
// (descending when desc), as of one revision and with the committed
// journal steps applied, until fn returns false. It reads a page at a
// time; a compaction in the middle starts it again.
func (s *Store) scan(ctx context.Context, prefix string, desc bool, fn func(kv) (bool, error)) error {
	return s.scanRange(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), desc, false, fn)
}

// scanRange is scan of the keys in [from, to), of their keys alone (nil
// values) when keysOnly.
func (s *Store) scanRange(ctx context.Context, from, to string, desc, keysOnly bool, fn func(kv) (bool, error)) error {
	for attempt := 0; ; attempt++ {
		err := s.scanOnce(ctx, from, to, desc, keysOnly, fn)
		if errors.Is(err, rpctypes.ErrCompacted) && attempt < 3 {
			continue
		}
		return err
	}
}

func (s *Store) scanOnce(ctx context.Context, from, to string, desc, keysOnly bool, fn func(kv) (bool, error)) error {
	lo, hi := from, to
	order := clientv3.SortAscend
	if desc {
		order = clientv3.SortDescend
	}
	var rev int64
	var ov overlay
	var all []kv // with an overlay: every key, merged before fn sees them
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(to), clientv3.WithLimit(scanPage), clientv3.WithSort(clientv3.SortByKey, order)}
		if keysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		var kvsResp *clientv3.GetResponse
		if rev == 0 {
			resp, err := s.cli.Txn(ctx).Then(
				clientv3.OpGet(s.k.journal, clientv3.WithPrefix()),
				clientv3.OpGet(from, opts...)).Commit()
			if err != nil {
				return err
			}
			if ov, err = s.overlayOf(resp.Responses[0].GetResponseRange().Kvs); err != nil {
				return err
			}
			ov = ov.within(lo, hi)
			rev = resp.Header.Revision
			kvsResp = (*clientv3.GetResponse)(resp.Responses[1].GetResponseRange())
		} else {
			var err error
			if kvsResp, err = s.cli.Get(ctx, from, append(opts, clientv3.WithRev(rev))...); err != nil {
				return err
			}
		}
		for _, e := range kvsResp.Kvs {
			x := kv{string(e.Key), e.Value}
			if ov != nil {
				all = append(all, x)
				continue
			}
			more, err := fn(x)
			if err != nil || !more {
				return err
			}
		}
		if !kvsResp.More || len(kvsResp.Kvs) == 0 {
			break
		}
		last := string(kvsResp.Kvs[len(kvsResp.Kvs)-1].Key)
		if desc {
			to = last
		} else {
			from = last + "\x00"
		}
	}
	if ov == nil {
		return nil
	}
	merged := make([]kv, 0, len(all)+len(ov))
	for _, x := range all {
		if _, ok := ov[x.key]; !ok {
			merged = append(merged, x)
		}
	}
	for k, o := range ov {
		if !o.Del {
			merged = append(merged, kv{k, o.Val})
		}
	}
	slices.SortFunc(merged, func(a, b kv) int {
		if desc {
			return strings.Compare(b.key, a.key)
		}
		return strings.Compare(a.key, b.key)
	})
	for _, x := range merged {
		more, err := fn(x)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// read runs fn with a context for one call, once the store is known open.
func (s *Store) read(fn func(ctx context.Context) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	return fn(ctx)
}

// Vars returns every set variable.
func (s *Store) Vars() (map[string]whenlua.Value, error) {
	vars := make(map[string]whenlua.Value)
	err := s.read(func(ctx context.Context) error {
		return s.scan(ctx, s.k.vars, false, func(x kv) (bool, error) {
			name := x.key[len(s.k.vars):]
			v, err := whenlua.DecodeValue(x.val)
			if err != nil {
				return false, fmt.Errorf("variable %s: %w", name, err)
			}
			vars[name] = v
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read variables: %w", err)
	}
	return vars, nil
}

// History returns the kept versions of name, newest first, at most n of
// them (n <= 0: all). A name without versions gives an empty list.
func (s *Store) History(name string, n int) ([]whenlua.Version, error) {
	var out []whenlua.Version
	err := s.read(func(ctx context.Context) error {
		return s.scan(ctx, s.k.histPrefix(name), true, func(x kv) (bool, error) {
			ver, err := decodeVersion(x.val)
			if err != nil {
				return false, err
			}
			out = append(out, ver)
			return n <= 0 || len(out) < n, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", name, err)
	}
	return out, nil
}

// JobStates returns every stored when-job state, by job name.
func (s *Store) JobStates() (map[string]whenlua.JobState, error) {
	states := make(map[string]whenlua.JobState)
	err := s.read(func(ctx context.Context) error {
		return s.scan(ctx, s.k.states, false, func(x kv) (bool, error) {
			job := x.key[len(s.k.states):]
			st, err := decodeJobState(x.val)
			if err != nil {
				return false, fmt.Errorf("job %s: %w", job, err)
			}
			states[job] = st
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read job states: %w", err)
	}
	return states, nil
}

// Serial returns the stored JOBSERIAL counter, 0 when never written.
func (s *Store) Serial() (uint64, error) {
	var serial uint64
	err := s.read(func(ctx context.Context) error {
		vals, err := s.get(ctx, s.k.serial)
		if err != nil || vals[0] == nil {
			return err
		}
		serial, err = strconv.ParseUint(string(vals[0]), 10, 64)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read serial: %w", err)
	}
	return serial, nil
}

// Run returns one run record with its stored output. An unknown serial
// gives an error wrapping whenlua.ErrNotFound.
func (s *Store) Run(serial uint64) (whenlua.Run, error) {
	var r whenlua.Run
	err := s.read(func(ctx context.Context) error {
		vals, err := s.get(ctx, s.k.runKey(serial), s.k.outKey(serial))
		if err != nil {
			return err
		}
		if vals[0] == nil {
			return whenlua.ErrNotFound
		}
		if r, err = decodeRun(vals[0]); err != nil {
			return err
		}
		if vals[1] != nil {
			r.Output = vals[1]
		}
		return nil
	})
	if err != nil {
		return whenlua.Run{}, fmt.Errorf("run %d: %w", serial, err)
	}
	return r, nil
}

// Runs returns run records without their output, newest serial first:
// those of job, or of every job when job is "", at most n (n <= 0: all).
func (s *Store) Runs(job string, n int) ([]whenlua.Run, error) {
	runs, err := s.scanRuns(func(r *whenlua.Run) bool { return job == "" || r.Job == job }, n)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// RunningRuns returns the runs whose state is whenlua.RunRunning or
// RunQueued, newest serial first.
func (s *Store) RunningRuns() ([]whenlua.Run, error) {
	runs, err := s.scanRuns(func(r *whenlua.Run) bool {
		return r.State == whenlua.RunRunning || r.State == whenlua.RunQueued
	}, 0)
	if err != nil {
		return nil, fmt.Errorf("list running runs: %w", err)
	}
	return runs, nil
}

func (s *Store) scanRuns(keep func(*whenlua.Run) bool, n int) ([]whenlua.Run, error) {
	var out []whenlua.Run
	err := s.read(func(ctx context.Context) error {
		return s.scan(ctx, s.k.runs, true, func(x kv) (bool, error) {
			r, err := decodeRun(x.val)
			if err != nil {
				return false, err
			}
			if keep(&r) {
				out = append(out, r)
			}
			return n <= 0 || len(out) < n, nil
		})
	})
	return out, err
}

// Evaluations returns the kept evaluations of job, newest first; none for
// a job never evaluated.
func (s *Store) Evaluations(job string) ([]whenlua.Evaluation, error) {
	var out []whenlua.Evaluation
	prefix := s.k.evalPrefix(job)
	err := s.read(func(ctx context.Context) error {
		return s.scan(ctx, prefix, false, func(x kv) (bool, error) {
			if len(x.key) != len(prefix)+2 {
				return true, nil
			}
			e, err := decodeEval(x.val)
			if err != nil {
				return false, err
			}
			out = append(out, e)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read evaluations of %s: %w", job, err)
	}
	slices.SortFunc(out, func(a, b whenlua.Evaluation) int { return cmp.Compare(b.Seq, a.Seq) })
	return out, nil
}

// EvalSeqs returns, by job, the sequence of its newest kept evaluation.
func (s *Store) EvalSeqs() (map[string]uint64, error) {
	seqs := map[string]uint64{}
	err := s.read(func(ctx context.Context) error {
		return s.scan(ctx, s.k.evals, false, func(x kv) (bool, error) {
			rest := x.key[len(s.k.evals):]
			i := strings.LastIndexByte(rest, '/')
			if i < 0 {
				return false, fmt.Errorf("bad evaluation key %q", x.key)
			}
			e, err := decodeEval(x.val)
			if err != nil {
				return false, err
			}
			job := rest[:i]
			seqs[job] = max(seqs[job], e.Seq)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read evaluation sequences: %w", err)
	}
	return seqs, nil
}

// ScanHistory calls fn with every kept version of every variable,
// variable by variable, each variable's versions in the order they were
// stored (whenlua.HistoryScanner).
func (s *Store) ScanHistory(ctx context.Context, fn func(whenlua.VarVersion) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	return s.scan(ctx, s.k.hist, false, func(x kv) (bool, error) {
		rest := x.key[len(s.k.hist):]
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			return false, fmt.Errorf("bad history key %q", x.key)
		}
		v, err := decodeVersion(x.val)
		if err != nil {
			return false, err
		}
		if err := fn(whenlua.VarVersion{Name: rest[:i], Version: v}); err != nil {
			return false, err
		}
		return true, nil
	})
}
