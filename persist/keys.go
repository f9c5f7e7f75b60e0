package persist

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Key prefixes (see the package comment).
var (
	prefixVar     = []byte("v/")
	prefixHistory = []byte("h/")
	prefixState   = []byte("s/")
	prefixRun     = []byte("r/")
	prefixOutput  = []byte("o/")
	keySerial     = []byte("m/serial")
)

// historySuffixLen is the length of a history key after its name prefix:
// 8 bytes of unix nanos and 8 of sequence.
const historySuffixLen = 16

func varKey(name string) []byte {
	return append(append(make([]byte, 0, len(prefixVar)+len(name)), prefixVar...), name...)
}

func stateKey(job string) []byte {
	return append(append(make([]byte, 0, len(prefixState)+len(job)), prefixState...), job...)
}

// historyPrefix is h/<name>\x00: every version of name and nothing else
// (names never contain a zero byte).
func historyPrefix(name string) []byte {
	b := make([]byte, 0, len(prefixHistory)+len(name)+1+historySuffixLen)
	b = append(b, prefixHistory...)
	b = append(b, name...)
	return append(b, 0)
}

// historyKey is h/<name>\x00<be unix nanos><be seq>. Times before 1970
// count as 1970.
func historyKey(name string, t time.Time, seq uint64) []byte {
	b := historyPrefix(name)
	b = binary.BigEndian.AppendUint64(b, uint64(max(t.UnixNano(), 0)))
	return binary.BigEndian.AppendUint64(b, seq)
}

// parseHistoryKey splits a history key: k[:sep] is h/<name>, t its time.
func parseHistoryKey(k []byte) (sep int, t time.Time, ok bool) {
	sep = len(k) - historySuffixLen - 1
	if !bytes.HasPrefix(k, prefixHistory) || sep < len(prefixHistory) || k[sep] != 0 {
		return 0, time.Time{}, false
	}
	nanos := binary.BigEndian.Uint64(k[sep+1:])
	return sep, time.Unix(0, int64(nanos)), true
}

func runKey(serial uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(prefixRun)+8), prefixRun...), serial)
}

func outputKey(serial uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(prefixOutput)+8), prefixOutput...), serial)
}

// seekLast returns a key after every key that starts with prefix and has
// at most extra more bytes, for the first Seek of a reverse iteration.
func seekLast(prefix []byte, extra int) []byte {
	k := make([]byte, len(prefix), len(prefix)+extra+1)
	copy(k, prefix)
	return append(k, bytes.Repeat([]byte{0xff}, extra+1)...)
}
