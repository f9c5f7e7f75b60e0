package persist

import (
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/storetest"
)

// TestStoreContract runs the contract every whenlua.Store keeps
// (internal/storetest; cluster runs it on etcd).
func TestStoreContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB, o storetest.Options) whenlua.Store {
			return openTest(t, Options{HistoryKeep: o.HistoryKeep, HistoryMaxAge: o.HistoryMaxAge, RunsKeep: o.RunsKeep, Now: o.Now})
		},
		Reopen: func(t testing.TB, s whenlua.Store) whenlua.Store { return reopen(t, s.(*Store)) },
		Keys: func(t testing.TB, s whenlua.Store, kind string) int {
			var prefix []byte
			switch {
			case strings.HasPrefix(kind, "history/"):
				prefix = historyPrefix(strings.TrimPrefix(kind, "history/"))
			case kind == "runs":
				prefix = prefixRun
			case kind == "outputs":
				prefix = prefixOutput
			default:
				t.Fatalf("unknown kind %q", kind)
			}
			return countPrefix(t, s.(*Store), prefix)
		},
	})
}
