package persist

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/whenlua/whenlua"
)

// A store written with the time in the history keys (format 1) is
// rewritten at Open, its versions keeping their order, times and origins.
func TestHistoryInTheEarlierLayoutIsMigrated(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		for i := range 3 {
			k := append([]byte("h/x\x00"), binary.BigEndian.AppendUint64(nil, uint64(at(time.Duration(i)*time.Second).UnixNano()))...)
			k = binary.BigEndian.AppendUint64(k, uint64(100+i))
			v := appendString([]byte{1}, fmt.Sprint("origin ", i))
			v = whenlua.Int(int64(i)).AppendBinary(v)
			if err := txn.Set(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTest(t, Options{Dir: dir})
	h, err := s.History("x", 0)
	if err != nil || len(h) != 3 {
		t.Fatalf("history %+v, %v", h, err)
	}
	for i, v := range h {
		want := 2 - i
		if v.Value.I != int64(want) || v.Origin != fmt.Sprint("origin ", want) || !v.Time.Equal(at(time.Duration(want)*time.Second)) {
			t.Errorf("version %d: %+v", i, v)
		}
	}
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(3)}}})
	if h, _ := s.History("x", 0); len(h) != 4 || h[0].Value.I != 3 {
		t.Errorf("after one more version: %+v", h)
	}
}
