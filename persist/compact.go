package persist

import (
	"context"
	"time"
)

// Compaction. Badger's compactor goroutines each wake every 50 ms, busy or
// idle, and badger needs two of them or none: 40 wake-ups a second, most
// of what an idle daemon costs (the Go scheduler, sysmon and the epoll loop
// wake with each). So badger runs with no compactor and the store compacts
// on its own, polling level 0 as badger would, but only while it writes.
//
// Level 0 grows by memtable flushes, and flushes follow writes. Each write
// (a commit group, Trim's batch, value-log GC, the replay at Open) wakes the
// compaction goroutine, which then looks at level 0 every compactPoll until
// no write has been in progress for compactLinger. Once level 0 holds
// NumLevelZeroTables tables it merges the tree down with badger's Flatten.
// Badger stalls a flush once level 0 reaches NumLevelZeroTablesStall; the
// polling goes on during such a stall, since the write that waits is still
// in progress, and the compaction drains it. An idle store has no timer.
const (
	compactPoll   = 50 * time.Millisecond
	compactLinger = 2 * time.Second
)

// writeBegin marks a write in progress and wakes the compaction goroutine;
// writeEnd ends it.
func (s *Store) writeBegin() {
	s.writing.Add(1)
	select {
	case s.compactCh <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (s *Store) writeEnd() {
	s.lastWrite.Store(time.Now().UnixNano())
	s.writing.Add(-1)
}

// needsCompaction reports whether level 0 has reached the size at which
// badger's own compactors would have picked it, and Flatten would act on
// it: while every table is still in level 0 (a young database), Flatten
// leaves exactly NumLevelZeroTables of them alone, their score being 1 and
// not above.
func (s *Store) needsCompaction() bool {
	levels := s.db.Levels()
	full := s.db.Opts().NumLevelZeroTables
	switch n := levels[0].NumTables; {
	case n < full:
		return false
	case n > full:
		return true
	}
	for _, l := range levels[1:] {
		if l.Size > 0 {
			return true
		}
	}
	return false
}

// compactLoop runs on its own goroutine until ctx is done and no write is
// in progress. Close cancels ctx once no more write can begin.
func (s *Store) compactLoop(ctx context.Context) {
	defer close(s.compactDone)
	done := ctx.Done()
	var logged time.Time
	t := time.NewTicker(compactPoll)
	t.Stop()
	for {
		if done == nil && s.writing.Load() == 0 {
			return
		}
		if done != nil {
			select {
			case <-done:
				done = nil
				continue
			case <-s.compactCh:
			}
		}
		// Writes are going on: watch level 0 until they have stopped.
		t.Reset(compactPoll)
		for {
			s.polls.Add(1)
			if s.needsCompaction() {
				// A failing compaction is retried at each poll, and
				// logged once a minute.
				if err := s.compact(); err != nil && time.Since(logged) > time.Minute {
					s.log.Error("store compaction", "err", err)
					logged = time.Now()
				}
			}
			// The wake-ups of the writes since the last look are
			// consumed first: a write that begins after this is seen
			// in progress below, or wakes the outer loop.
			select {
			case <-s.compactCh:
			default:
			}
			if s.writing.Load() == 0 && (done == nil ||
				time.Since(time.Unix(0, s.lastWrite.Load())) > s.linger) {
				break
			}
			// Only the ticker paces the looks: each commit wakes this
			// goroutine otherwise, and reading badger's levels costs
			// more than a small commit.
			select {
			case <-done:
				done = nil
			case <-t.C:
			}
		}
		t.Stop()
	}
}

// compact merges level 0 and every other level into one (Flatten). It
// takes no lock: Close closes badger only after this goroutine returned,
// and a write stalled at level 0 holds the store's shared lock while it
// waits for this compaction.
func (s *Store) compact() error {
	t0 := time.Now()
	if err := s.db.Flatten(1); err != nil {
		return err
	}
	s.compactions.Add(1)
	s.log.Debug("store compacted", "took", time.Since(t0).Round(time.Millisecond))
	return nil
}
