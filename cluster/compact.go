package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maintain runs on its own goroutine until ctx is done: at once and then
// every period, on the writer only (its fence holds), it applies
// retention, compacts etcd's history and defragments the members that
// have much free space. A pass that fails is logged and tried again at the
// next period.
func (s *Store) maintain(ctx context.Context, every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	m := &maintainer{s: s}
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		err := m.pass(ctx)
		if err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrNotLeader) {
				s.log.Debug("cluster store maintenance: not the writer", "err", err)
			} else {
				s.log.Error("cluster store maintenance", "err", err)
			}
		}
		if s.opts.afterPass != nil {
			s.opts.afterPass(err)
		}
	}
}

// maintainer is the maintenance goroutine's own state.
type maintainer struct {
	s *Store
	// prevRev is the revision seen at the previous pass: a pass compacts
	// up to it, so that a watcher has at least one period to catch up.
	prevRev    int64
	lastDefrag time.Time
}

// pass is one maintenance pass.
func (m *maintainer) pass(ctx context.Context) error {
	s := m.s
	if err := m.recoverSpace(ctx); err != nil {
		return err
	}
	if err := s.trim(ctx); err != nil {
		return err
	}
	rev, err := m.compact(ctx)
	if err != nil {
		return err
	}
	m.prevRev = rev
	return m.defrag(ctx)
}

// recoverSpace gets etcd out of its quota alarm (NOSPACE), when raised:
// etcd then refuses every write, deletes included, until the alarm is
// disarmed. On the writer only, it compacts at the current revision,
// defragments every member and disarms the alarm, as etcd's
// documentation says to; the pass's Trim then deletes what retention
// allows.
func (m *maintainer) recoverSpace(ctx context.Context) error {
	s := m.s
	cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	defer cancel()
	alarms, err := s.cli.AlarmList(cctx)
	if err != nil {
		return fmt.Errorf("list alarms: %w", err)
	}
	var full []*clientv3.AlarmMember
	for _, a := range alarms.Alarms {
		if a.Alarm == etcdserverpb.AlarmType_NOSPACE {
			full = append(full, (*clientv3.AlarmMember)(a))
		}
	}
	if len(full) == 0 {
		return nil
	}
	resp, err := s.cli.Txn(cctx).If(s.fence()...).Commit()
	if err != nil {
		return fmt.Errorf("recover space: %w", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("recover space: %w", ErrNotLeader)
	}
	if _, err := s.cli.Compact(cctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("recover space: compact: %w", err)
	}
	for _, ep := range s.cli.Endpoints() {
		if _, err := s.cli.Defragment(cctx, ep); err != nil {
			return fmt.Errorf("recover space: defragment %s: %w", ep, err)
		}
	}
	for _, a := range full {
		if _, err := s.cli.AlarmDisarm(cctx, a); err != nil {
			return fmt.Errorf("recover space: disarm: %w", err)
		}
	}
	m.prevRev = resp.Header.Revision
	s.log.Warn("cluster store: etcd's database had reached its quota: compacted, defragmented and disarmed")
	return nil
}

// compact compacts etcd's history up to the revision seen at the previous
// pass, under the fence, and returns the current revision. etcd keeps
// every revision of every key until compacted: the versions and runs Trim
// deleted, and every rewrite of the head, stay in its database until then.
func (m *maintainer) compact(ctx context.Context) (int64, error) {
	s := m.s
	cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	defer cancel()
	resp, err := s.cli.Txn(cctx).If(s.fence()...).Commit()
	if err != nil {
		return 0, fmt.Errorf("compact: %w", err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("compact: %w", ErrNotLeader)
	}
	cur := resp.Header.Revision
	if m.prevRev > 0 && m.prevRev < cur {
		// Physical: wait until the backend has dropped the old revisions,
		// so that a defragmentation after it gets their space back.
		if _, err := s.cli.Compact(cctx, m.prevRev, clientv3.WithCompactPhysical()); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			return cur, fmt.Errorf("compact at %d: %w", m.prevRev, err)
		}
	}
	return cur, nil
}

// defrag defragments, one at a time, the members whose database has at
// least DefragMinFree bytes not in use, at most once per DefragEvery:
// defragmenting blocks a member's reads and writes while it runs.
func (m *maintainer) defrag(ctx context.Context) error {
	s := m.s
	if !m.lastDefrag.IsZero() && time.Since(m.lastDefrag) < s.opts.DefragEvery {
		return nil
	}
	did := false
	for _, ep := range s.cli.Endpoints() {
		if err := m.defragOne(ctx, ep, &did); err != nil {
			return err
		}
	}
	if did {
		m.lastDefrag = time.Now()
	}
	return nil
}

func (m *maintainer) defragOne(ctx context.Context, ep string, did *bool) error {
	s := m.s
	cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	defer cancel()
	st, err := s.cli.Status(cctx, ep)
	if err != nil {
		return fmt.Errorf("status of %s: %w", ep, err)
	}
	if st.DbSize-st.DbSizeInUse < s.opts.DefragMinFree {
		return nil
	}
	if _, err := s.cli.Defragment(cctx, ep); err != nil {
		return fmt.Errorf("defragment %s: %w", ep, err)
	}
	*did = true
	s.log.Info("cluster store: defragmented etcd member", "endpoint", ep, "size_before", st.DbSize, "in_use", st.DbSizeInUse)
	return nil
}
