package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whenlua/whenlua"
)

// Trim applies retention to everything stored now, as persist's Trim
// does: per variable it keeps the newest HistoryKeep versions younger than
// HistoryMaxAge, and always the newest one; of the run records it deletes
// the oldest beyond RunsKeep, never a running or queued one, with their
// output. It writes fenced, in transactions within etcd's limits, between
// which commits go on. A fence that fails gives an error wrapping
// ErrNotLeader.
func (s *Store) Trim() error {
	return s.trim(context.Background())
}

// trim is Trim within ctx (the maintenance goroutine's: Close cancels it).
func (s *Store) trim(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*s.opts.CallTimeout)
	defer cancel()
	// Only the writer trims: a node that is not learns it even when there
	// is nothing to trim.
	if fence := s.fence(); len(fence) > 0 {
		resp, err := s.cli.Txn(ctx).If(fence...).Commit()
		if err != nil {
			return fmt.Errorf("trim: %w", err)
		}
		if !resp.Succeeded {
			return fmt.Errorf("trim: %w", ErrNotLeader)
		}
	}
	hist, err := s.trimHistory(ctx)
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	runs, err := s.trimAllRuns(ctx)
	if err != nil {
		return fmt.Errorf("trim runs: %w", err)
	}
	if hist > 0 || runs > 0 {
		s.log.Debug("cluster store retention", "versions", hist, "runs", runs)
	}
	return nil
}

// writeOps writes deletes of retention in transactions of the fast path,
// reloading the view when another writer moved the head. Deleting a key
// already gone (a commit trimmed it meanwhile) is harmless.
func (s *Store) writeOps(ctx context.Context, ops []kvOp) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.enter(); err != nil {
		return err
	}
	for _, chunk := range splitOps(ops, s.opts.maxBytes, s.opts.maxOps-1) {
		for attempt := 0; ; attempt++ {
			if err := s.ready(ctx); err != nil {
				return err
			}
			err := s.write(ctx, chunk)
			if err == nil {
				break
			}
			if !errors.Is(err, errStale) || attempt >= 3 {
				return err
			}
		}
	}
	return nil
}

type histName struct {
	name string
	r    seqRange
}

// trimHistory deletes the versions beyond retention and returns how many.
func (s *Store) trimHistory(ctx context.Context) (int, error) {
	var names []histName
	err := s.scanRange(ctx, s.k.hist, clientv3.GetPrefixRangeEnd(s.k.hist), false, true, func(x kv) (bool, error) {
		rest := x.key[len(s.k.hist):]
		i := strings.LastIndexByte(rest, '/')
		seq, ok := histSeq(x.key)
		if i < 0 || !ok {
			return false, fmt.Errorf("bad history key %q", x.key)
		}
		name := rest[:i]
		if n := len(names); n > 0 && names[n-1].name == name {
			names[n-1].r.last = seq
			return true, nil
		}
		names = append(names, histName{name: name, r: seqRange{first: seq, last: seq}})
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	cutoff := whenlua.AgeCutoff(s.opts.Now(), s.opts.HistoryMaxAge)
	deleted := 0
	for _, h := range names {
		cut := whenlua.KeepFrom(h.r.first, h.r.last, s.opts.HistoryKeep) // versions first..cut-1 go
		if !cutoff.IsZero() {
			if cut, err = s.ageCut(ctx, h, cut, cutoff); err != nil {
				return deleted, err
			}
		}
		if cut <= h.r.first {
			continue
		}
		var ops []kvOp
		for seq := h.r.first; seq < cut; seq++ {
			ops = append(ops, kvOp{Key: s.k.histKey(h.name, seq), Del: true})
		}
		if err := s.writeOps(ctx, ops); err != nil {
			return deleted, err
		}
		deleted += len(ops)
		s.writeMu.Lock()
		if r, ok := s.view.seqs[h.name]; ok && r.first < cut {
			r.first = cut
			s.view.seqs[h.name] = r
		}
		s.writeMu.Unlock()
	}
	return deleted, nil
}

// ageCut moves cut past the versions from cut on that are older than
// cutoff, never past the newest version h.r.last.
func (s *Store) ageCut(ctx context.Context, h histName, cut uint64, cutoff time.Time) (uint64, error) {
	prefix := s.k.histPrefix(h.name)
	err := s.scanRange(ctx, s.k.histKey(h.name, cut), clientv3.GetPrefixRangeEnd(prefix), false, false, func(x kv) (bool, error) {
		seq, _ := histSeq(x.key)
		if seq >= h.r.last {
			return false, nil
		}
		v, err := decodeVersion(x.val)
		if err != nil {
			return false, err
		}
		if !v.Time.Before(cutoff) {
			return false, nil // by sequence, not time: a later version may be older after a clock step, and stays
		}
		cut = seq + 1
		return true, nil
	})
	return cut, err
}

// trimAllRuns deletes the oldest finished run records beyond RunsKeep, a
// transaction at a time, and returns how many.
func (s *Store) trimAllRuns(ctx context.Context) (int, error) {
	deleted := 0
	for {
		n, done, err := s.trimRunsOnce(ctx)
		deleted += n
		if err != nil || done {
			return deleted, err
		}
	}
}

// trimRunsOnce deletes one transaction's worth of run records; done when
// there is nothing more to delete.
func (s *Store) trimRunsOnce(ctx context.Context) (deleted int, done bool, err error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.enter(); err != nil {
		return 0, true, err
	}
	for attempt := 0; ; attempt++ {
		if err := s.ready(ctx); err != nil {
			return 0, true, err
		}
		excess := s.view.runs.n - s.opts.RunsKeep
		if excess <= 0 {
			return 0, true, nil
		}
		n := min(excess, (s.opts.maxOps-1)/2)
		ops, rc, err := s.trimRunsOps(ctx, s.view.runs, n, 8*trimPerCommit, nil)
		if err != nil {
			return 0, true, err
		}
		if len(ops) == 0 {
			return 0, true, nil
		}
		if err := s.write(ctx, ops); err != nil {
			if errors.Is(err, errStale) && attempt < 3 {
				continue
			}
			return 0, true, err
		}
		deleted = s.view.runs.n - rc.n
		s.view.runs = rc
		return deleted, false, nil
	}
}

// DropEvaluations deletes the kept evaluations of jobs (`whenlua why`), as
// persist's does: the engine calls it for jobs that left long ago. It
// writes fenced, in transactions within etcd's limits.
func (s *Store) DropEvaluations(jobs []string) error {
	if err := s.enter(); err != nil {
		return fmt.Errorf("drop evaluations: %w", err)
	}
	ops := make([]kvOp, 0, len(jobs)*whenlua.EvalKeep)
	for _, job := range jobs {
		for slot := range uint64(whenlua.EvalKeep) {
			ops = append(ops, kvOp{Key: s.k.evalKey(job, slot), Del: true})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.opts.CallTimeout)
	defer cancel()
	if err := s.writeOps(ctx, ops); err != nil {
		return fmt.Errorf("drop evaluations: %w", err)
	}
	return nil
}
