package persist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
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
// removes the commit log, which checkOldCommitLog found empty.
func (s *Store) migrate() error {
	if err := os.Remove(filepath.Join(s.opts.Dir, oldLogName)); err == nil {
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
			val := append([]byte{formatVersionNoMark}, binary.BigEndian.AppendUint64(nil, uint64(o.t.UnixNano()))...)
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

// The commit log of earlier versions, which ran badger without synced
// writes and made each commit durable by a record in this file. Its
// header (the first oldLogHeaderSize bytes) holds a magic, the sequence of
// the first record of the current epoch and a nonce, with their CRC32C.
// Records follow from oldLogHeaderSize: a magic, the payload length, the
// sequence, the CRC32C of the nonce, length, sequence and payload, then
// the payload. A clean stop made badger durable and started a new epoch,
// so no record at oldLogHeaderSize belongs to it (bytes of older epochs
// fail the sequence or the CRC).
const (
	oldLogName       = "commit.log"
	oldLogHeaderSize = 4096
	oldLogRecHeader  = 20
	oldLogRecMagic   = 0x3152_4c57 // "WLR1" little-endian
)

var (
	oldLogMagic = [8]byte{'w', 'h', 'e', 'n', 'l', 'o', 'g', 1}
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

// checkOldCommitLog refuses a directory whose commit log of an earlier
// version holds a record of its current epoch: that version stopped
// without writing it into badger (a crash or power loss), and the commit
// it holds may be in no other file. Only that version can replay it.
func checkOldCommitLog(dir string) error {
	path := filepath.Join(dir, oldLogName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	has, err := oldLogHasRecord(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if has {
		return fmt.Errorf("%s holds commits an earlier whenlua version has not yet written into its database "+
			"(it was not stopped cleanly); start that version once, stop it with \"whenlua daemon stop\", then start this one", path)
	}
	return nil
}

// oldLogHasRecord tells whether the first record of a commit log belongs
// to the epoch its header names. A file without a valid header (cut short
// or torn while a checkpoint rewrote it, which that version did only once
// badger was durable) has none, and neither has a torn first record, whose
// commit was never acknowledged.
func oldLogHasRecord(f *os.File) (bool, error) {
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	size := st.Size()
	if size < oldLogHeaderSize+oldLogRecHeader {
		return false, nil
	}
	var hdr [28]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return false, err
	}
	if [8]byte(hdr[:8]) != oldLogMagic || crc32.Checksum(hdr[:24], castagnoli) != binary.LittleEndian.Uint32(hdr[24:]) {
		return false, nil
	}
	var rh [oldLogRecHeader]byte
	if _, err := f.ReadAt(rh[:], oldLogHeaderSize); err != nil {
		return false, err
	}
	n := int64(binary.LittleEndian.Uint32(rh[4:]))
	if binary.LittleEndian.Uint32(rh[:]) != oldLogRecMagic ||
		binary.LittleEndian.Uint64(rh[8:]) != binary.LittleEndian.Uint64(hdr[8:]) ||
		n > size-oldLogHeaderSize-oldLogRecHeader {
		return false, nil
	}
	payload := make([]byte, n)
	if _, err := f.ReadAt(payload, oldLogHeaderSize+oldLogRecHeader); err != nil {
		return false, err
	}
	c := crc32.Update(0, castagnoli, hdr[16:24]) // the nonce
	c = crc32.Update(c, castagnoli, rh[4:16])
	c = crc32.Update(c, castagnoli, payload)
	return c == binary.LittleEndian.Uint32(rh[16:]), nil
}
