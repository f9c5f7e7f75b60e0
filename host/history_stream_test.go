package host

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/persist"
)

// scanFaultStore is a store whose history scan fails after a number of
// versions, as a damaged value log would make it.
type scanFaultStore struct {
	*persist.Store
	after int
}

func (s scanFaultStore) ScanHistory(ctx context.Context, fn func(whenlua.VarVersion) error) error {
	n := 0
	return s.Store.ScanHistory(ctx, func(v whenlua.VarVersion) error {
		if n == s.after {
			return errors.New("version unreadable: injected fault")
		}
		n++
		return fn(v)
	})
}

// A history stream that fails part way says why, not that the stream ended
// in the middle of a version: the stream is sent in chunks, and the
// daemon's error follows the last one, cut where it was.
func TestAHistoryStreamThatFailsSaysWhy(t *testing.T) {
	p := testPaths(t, t.TempDir())
	te := openTestEngineOpts(t, p, NewFakeClock(testEpoch), -1, func(o *EngineOptions) {
		o.Store = scanFaultStore{Store: o.Store.(*persist.Store), after: 150}
	})
	for i := range 200 {
		te.set("v", strings.Repeat("x", 1000+i))
	}
	ts := serveFake(t, te.Engine, ServerOptions{})
	got := 0
	err := ts.client.ScanHistory(context.Background(), func(whenlua.VarVersion) error {
		got++
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "injected fault") {
		t.Fatalf("ScanHistory after %d versions: %v, want the daemon's error", got, err)
	}
	if got == 0 || got >= 150 {
		t.Fatalf("read %d versions before the error", got)
	}
}
