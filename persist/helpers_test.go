package persist

import (
	"io"
	"log/slog"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// quietLogger drops everything: badger's debug lines would drown test output.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// openTest opens a store in a fresh temporary directory without background
// maintenance and closes it when the test ends.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	if opts.MaintainEvery == 0 {
		opts.MaintainEvery = -1
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// reopen closes s and opens its directory again with the same options.
func reopen(t testing.TB, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return openTest(t, s.opts)
}

func commit(t testing.TB, s *Store, b *Batch) {
	t.Helper()
	if err := s.Commit(b); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// at is a fixed instant plus d, for versions with known times.
func at(d time.Duration) time.Time {
	return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Add(d)
}

type (
	badgerTxn             = badger.Txn
	badgerIteratorOptions = badger.IteratorOptions
)
