package persist

import (
	"testing"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/storetest"
)

// TestStoreContract runs the contract every whenlua.Store keeps.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB, o storetest.Options) whenlua.Store {
			return openTest(t, Options{HistoryKeep: o.HistoryKeep, HistoryMaxAge: o.HistoryMaxAge, RunsKeep: o.RunsKeep, Now: o.Now})
		},
		Reopen: func(t testing.TB, s whenlua.Store) whenlua.Store { return reopen(t, s.(*Store)) },
	})
}
