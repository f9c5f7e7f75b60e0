package persist

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/whenlua/whenlua"
)

// Key prefixes (see the package comment).
var (
	prefixVar     = []byte("v/")
	prefixHistory = []byte("h/")
	prefixState   = []byte("s/")
	prefixRun     = []byte("r/")
	prefixOutput  = []byte("o/")
	keySerial     = []byte("m/serial")
	prefixEval    = []byte("e/")
)

// evalPrefix is e/<job>/: the kept evaluations of job. Job names hold no
// slash.
func evalPrefix(job string) []byte {
	b := make([]byte, 0, len(prefixEval)+len(job)+2)
	b = append(b, prefixEval...)
	b = append(b, job...)
	return append(b, '/')
}

// evalKey is e/<job>/<slot>: the slot (one byte) an evaluation of that
// sequence takes in job's ring of whenlua.EvalKeep, which it overwrites.
func evalKey(job string, seq uint64) []byte {
	return append(evalPrefix(job), byte(seq%whenlua.EvalKeep))
}

func varKey(name string) []byte {
	return append(append(make([]byte, 0, len(prefixVar)+len(name)), prefixVar...), name...)
}

func stateKey(job string) []byte {
	return append(append(make([]byte, 0, len(prefixState)+len(job)), prefixState...), job...)
}

// historyPrefix is h/<name>/: every version of name and nothing else
// (names never contain a slash).
func historyPrefix(name string) []byte {
	b := make([]byte, 0, len(prefixHistory)+len(name)+1+8)
	b = append(b, prefixHistory...)
	b = append(b, name...)
	return append(b, '/')
}

// historyKey is h/<name>/<be seq>.
func historyKey(name string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(historyPrefix(name), seq)
}

// parseHistoryKey splits a history key into its name and sequence.
func parseHistoryKey(k []byte) (name []byte, seq uint64, ok bool) {
	sep := len(k) - 8 - 1
	if !bytes.HasPrefix(k, prefixHistory) || sep <= len(prefixHistory) || k[sep] != '/' {
		return nil, 0, false
	}
	return k[len(prefixHistory):sep], binary.BigEndian.Uint64(k[sep+1:]), true
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

// describeKey names what a key holds, for error messages.
func describeKey(k []byte) string {
	switch {
	case bytes.HasPrefix(k, prefixVar):
		return fmt.Sprintf("variable %s", k[len(prefixVar):])
	case bytes.HasPrefix(k, prefixHistory):
		if name, seq, ok := parseHistoryKey(k); ok {
			return fmt.Sprintf("version %d of variable %s", seq, name)
		}
	case bytes.HasPrefix(k, prefixState):
		return fmt.Sprintf("the state of job %s", k[len(prefixState):])
	case bytes.HasPrefix(k, prefixRun) && len(k) == len(prefixRun)+8:
		return fmt.Sprintf("run %d", binary.BigEndian.Uint64(k[len(prefixRun):]))
	case bytes.HasPrefix(k, prefixOutput) && len(k) == len(prefixOutput)+8:
		return fmt.Sprintf("the output of run %d", binary.BigEndian.Uint64(k[len(prefixOutput):]))
	case bytes.Equal(k, keySerial):
		return "the JOBSERIAL counter"
	case bytes.HasPrefix(k, prefixEval) && len(k) >= len(prefixEval)+3:
		return fmt.Sprintf("evaluation slot %d of job %s", k[len(k)-1], k[len(prefixEval):len(k)-2])
	}
	return fmt.Sprintf("key %q", k)
}
