package persist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

// Earlier versions of the store kept a version's time in its key,
// h/<name>\x00<be unix nanos><be seq>, with format 1 values (origin,
// value), and a commit log of their own beside badger's files. migrate
// rewrites such versions as h/<name>/<be seq> in their stored order, and
// removes the commit log (empty after a clean stop of those versions).
func (s *Store) migrate() error {
	if err := os.Remove(filepath.Join(s.opts.Dir, "commit.log")); err == nil {
		s.log.Info("store: removed the commit log of an earlier version")
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	type old struct {
		key, name []byte
		t         time.Time
		val       []byte
	}
	var olds []old
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixHistory})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			sep := len(k) - 17
			if sep <= len(prefixHistory) || k[sep] != 0 || whenlua.ValidateName(string(k[len(prefixHistory):sep])) != nil {
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			olds = append(olds, old{
				key:  bytes.Clone(k),
				name: bytes.Clone(k[len(prefixHistory):sep]),
				t:    time.Unix(0, int64(binary.BigEndian.Uint64(k[sep+1:]))),
				val:  v,
			})
		}
		return nil
	})
	if err != nil || len(olds) == 0 {
		return err
	}
	for len(olds) > 0 {
		chunk := olds[:min(len(olds), trimChunk/2)]
		olds = olds[len(chunk):]
		txn := s.db.NewTransaction(true)
		seqs := map[string]seqRange{}
		for _, o := range chunk {
			name := string(o.name)
			r, ok := seqs[name]
			if !ok {
				if r, err = s.seqRange(txn, name); err != nil {
					txn.Discard()
					return err
				}
			}
			r.last++
			seqs[name] = r
			if len(o.val) == 0 || o.val[0] != 1 {
				txn.Discard()
				return errors.New("migrate history: unknown version format")
			}
			val := append([]byte{formatVersion}, binary.BigEndian.AppendUint64(nil, uint64(o.t.UnixNano()))...)
			val = append(val, o.val[1:]...)
			if err := txn.Set(historyKey(name, r.last), val); err != nil {
				txn.Discard()
				return err
			}
			if err := txn.Delete(o.key); err != nil {
				txn.Discard()
				return err
			}
		}
		if err := txn.Commit(); err != nil {
			return err
		}
	}
	s.log.Info("store: history keys rewritten in the per-variable sequence layout")
	return nil
}
