package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// journalStep is one step found in the journal.
type journalStep struct {
	step      uint64
	markerRev int64  // the marker's CreateRevision; 0: not committed
	ops       []kvOp // its parts' operations in order (committed steps)
	keys      []string
}

func encodeOps(ops []kvOp) (string, error) {
	b, err := json.Marshal(ops)
	return string(b), err
}

// hasMarker tells whether journal keys hold a committed step.
func hasMarker(kvs []*mvccpb.KeyValue) bool {
	for _, kv := range kvs {
		if strings.HasSuffix(string(kv.Key), "/commit") {
			return true
		}
	}
	return false
}

// parseJournal groups the journal's keys by step, in step order, and
// decodes the parts of the committed steps.
func (s *Store) parseJournal(kvs []*mvccpb.KeyValue) ([]journalStep, error) {
	var steps []journalStep
	parts := map[string][]byte{}
	for _, kv := range kvs {
		key := string(kv.Key)
		rest := strings.TrimPrefix(key, s.k.journal)
		stepHex, part, ok := strings.Cut(rest, "/")
		step, ok2 := parseHex16(stepHex)
		if !ok || !ok2 {
			return nil, fmt.Errorf("bad journal key %q", key)
		}
		if n := len(steps); n == 0 || steps[n-1].step != step {
			steps = append(steps, journalStep{step: step})
		}
		st := &steps[len(steps)-1]
		st.keys = append(st.keys, key)
		if part == "commit" {
			st.markerRev = kv.CreateRevision
			n, err := strconv.Atoi(string(kv.Value))
			if err != nil {
				return nil, fmt.Errorf("bad journal marker %q", kv.Value)
			}
			// The parts' count is checked when they are decoded.
			parts[key] = []byte(strconv.Itoa(n))
			continue
		}
		parts[key] = kv.Value
	}
	for i := range steps {
		st := &steps[i]
		if st.markerRev == 0 {
			continue
		}
		n, _ := strconv.Atoi(string(parts[s.k.markerKey(st.step)]))
		for p := range n {
			raw, ok := parts[s.k.partKey(st.step, p)]
			if !ok {
				return nil, fmt.Errorf("journal step %d: part %d of %d missing", st.step, p+1, n)
			}
			var ops []kvOp
			if err := json.Unmarshal(raw, &ops); err != nil {
				return nil, fmt.Errorf("journal step %d part %d: %w", st.step, p+1, err)
			}
			st.ops = append(st.ops, ops...)
		}
	}
	return steps, nil
}

// applyJournal applies the committed journal steps, oldest first, and
// deletes each once applied; under the fence it also deletes the parts of
// steps never committed. Applying is guarded by the step's marker, so a
// step is applied only while it is committed and not yet deleted, and
// applying twice writes the same values. The caller holds writeMu.
func (s *Store) applyJournal(ctx context.Context) error {
	resp, err := s.cli.Get(ctx, s.k.journal, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	steps, err := s.parseJournal(resp.Kvs)
	if err != nil {
		return err
	}
	for _, st := range steps {
		if st.markerRev == 0 {
			if err := s.dropParts(ctx, st); err != nil {
				return err
			}
			continue
		}
		guard := clientv3.Compare(clientv3.CreateRevision(s.k.markerKey(st.step)), "=", st.markerRev)
		for _, chunk := range splitOps(st.ops, s.opts.maxBytes, s.opts.maxOps) {
			then := make([]clientv3.Op, len(chunk))
			for i, o := range chunk {
				then[i] = o.op()
			}
			r, err := s.cli.Txn(ctx).If(guard).Then(then...).Commit()
			if err != nil {
				return fmt.Errorf("apply journal step %d: %w", st.step, err)
			}
			if !r.Succeeded {
				break // applied and deleted by another writer
			}
		}
		if _, err := s.cli.Txn(ctx).If(guard).
			Then(clientv3.OpDelete(s.k.stepPrefix(st.step), clientv3.WithPrefix())).Commit(); err != nil {
			return fmt.Errorf("delete journal step %d: %w", st.step, err)
		}
	}
	s.view.pending = false
	return nil
}

// dropParts deletes the parts of a step that was never committed: left by
// a writer that failed or was deposed before its marker. Only under the
// fence, and only while the step has no marker.
func (s *Store) dropParts(ctx context.Context, st journalStep) error {
	cmps := append(s.fence(), clientv3.Compare(clientv3.CreateRevision(s.k.markerKey(st.step)), "=", 0))
	var dels []clientv3.Op
	for _, k := range st.keys {
		dels = append(dels, clientv3.OpDelete(k))
	}
	for len(dels) > 0 {
		n := min(len(dels), s.opts.maxOps)
		if _, err := s.cli.Txn(ctx).If(cmps...).Then(dels[:n]...).Commit(); err != nil {
			return fmt.Errorf("delete journal parts of step %d: %w", st.step, err)
		}
		dels = dels[n:]
	}
	return nil
}

// overlay is what the committed journal steps write, by key: the last
// operation of each key.
type overlay map[string]kvOp

func (s *Store) overlayOf(kvs []*mvccpb.KeyValue) (overlay, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	steps, err := s.parseJournal(kvs)
	if err != nil {
		return nil, err
	}
	var ov overlay
	for _, st := range steps {
		for _, o := range st.ops {
			if ov == nil {
				ov = overlay{}
			}
			ov[o.Key] = o
		}
	}
	return ov, nil
}

// within returns the part of ov with keys in [from, to).
func (ov overlay) within(from, to string) overlay {
	var out overlay
	for k, o := range ov {
		if k >= from && k < to {
			if out == nil {
				out = overlay{}
			}
			out[k] = o
		}
	}
	return out
}
