package persist

import (
	"context"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

var _ whenlua.HistoryScanner = (*Store)(nil)

// ScanHistory calls fn with every kept version of every variable, in key
// order: variable by variable (names in byte order), each one's versions
// oldest first, all read in one transaction. A version's Commit is the
// commit timestamp badger gave the transaction that stored it: versions of
// one commit share it and later commits have larger ones, which orders
// versions across variables whatever the clock did.
func (s *Store) ScanHistory(ctx context.Context, fn func(whenlua.VarVersion) error) error {
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixHistory, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			name, _, ok := parseHistoryKey(item.Key())
			if !ok {
				continue // a key of an older layout that migration left
			}
			vv := whenlua.VarVersion{Name: string(name)}
			err := s.faults.value(item, func(b []byte) error {
				var err error
				vv.Version, err = decodeVersion(b)
				return err
			})
			if err != nil {
				return fmt.Errorf("variable %s: %w", name, err)
			}
			vv.Commit = item.Version()
			if err := fn(vv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	return nil
}
