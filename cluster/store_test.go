package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/storetest"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newClient returns a client of endpoints, closed when t ends.
func newClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

var clusterSeq atomic.Int64

// openTest opens a store without background maintenance under a cluster
// name of its own on the shared etcd (or opts.Client's), and closes it
// when t ends.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Client == nil {
		opts.Client = newClient(t, sharedEtcd.Endpoints())
	}
	if opts.Cluster == "" {
		opts.Cluster = fmt.Sprintf("t%d", clusterSeq.Add(1))
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
	t.Cleanup(func() { s.Close() })
	return s
}

func reopen(t testing.TB, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return openTest(t, s.opts)
}

func commit(t testing.TB, s *Store, b *whenlua.Batch) {
	t.Helper()
	if err := s.Commit(b); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// TestStoreContract runs the contract every whenlua.Store keeps: the same
// suite persist runs on badger.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB, o storetest.Options) whenlua.Store {
			return openTest(t, Options{HistoryKeep: o.HistoryKeep, HistoryMaxAge: o.HistoryMaxAge, RunsKeep: o.RunsKeep, Now: o.Now})
		},
		Reopen: func(t testing.TB, s whenlua.Store) whenlua.Store { return reopen(t, s.(*Store)) },
		Keys:   countKeys,
	})
}

// The same contract with transactions limited to 8 operations and 4 KiB:
// every batch of more than a few keys goes through the journal.
func TestStoreContractThroughTheJournal(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB, o storetest.Options) whenlua.Store {
			return openTest(t, Options{HistoryKeep: o.HistoryKeep, HistoryMaxAge: o.HistoryMaxAge, RunsKeep: o.RunsKeep, Now: o.Now,
				maxOps: 8, maxBytes: 4 << 10})
		},
		Reopen: func(t testing.TB, s whenlua.Store) whenlua.Store { return reopen(t, s.(*Store)) },
		Keys:   countKeys,
	})
}

// countKeys counts the keys of a kind s stores, for the contract.
func countKeys(t testing.TB, st whenlua.Store, kind string) int {
	t.Helper()
	s := st.(*Store)
	var prefix string
	switch {
	case strings.HasPrefix(kind, "history/"):
		prefix = s.k.histPrefix(strings.TrimPrefix(kind, "history/"))
	case kind == "runs":
		prefix = s.k.runs
	case kind == "outputs":
		prefix = s.k.outs
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	resp, err := s.cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.Count)
}
