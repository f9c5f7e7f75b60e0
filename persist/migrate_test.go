package persist

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/whenlua/whenlua"
)

// oldLogRecord is one record of an earlier version's commit log: its
// sequence and the nonce its CRC covers (the epoch's, or an older one's).
type oldLogRecord struct {
	seq, nonce uint64
	payload    []byte
	torn       bool // the CRC does not match
}

// writeOldLog writes dir/commit.log as an earlier version left it: a
// header naming the epoch (first sequence, nonce), the records from
// offset 4096, zeros up to size.
func writeOldLog(t *testing.T, dir string, seq, nonce uint64, recs []oldLogRecord, size int) string {
	t.Helper()
	b := make([]byte, oldLogHeaderSize, size)
	copy(b, oldLogMagic[:])
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint64(b[16:], nonce)
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	for _, r := range recs {
		var h [oldLogRecHeader]byte
		binary.LittleEndian.PutUint32(h[:], oldLogRecMagic)
		binary.LittleEndian.PutUint32(h[4:], uint32(len(r.payload)))
		binary.LittleEndian.PutUint64(h[8:], r.seq)
		c := crc32.Update(0, castagnoli, binary.LittleEndian.AppendUint64(nil, r.nonce))
		c = crc32.Update(c, castagnoli, h[4:16])
		c = crc32.Update(c, castagnoli, r.payload)
		if r.torn {
			c++
		}
		binary.LittleEndian.PutUint32(h[16:], c)
		b = append(append(b, h[:]...), r.payload...)
	}
	b = append(b, make([]byte, max(0, size-len(b)))...)
	path := filepath.Join(dir, oldLogName)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// storeDir is a store holding variable x, closed.
func storeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	commit(t, s, &Batch{Vars: []VarChange{{Name: "x", Value: whenlua.Int(1), Origin: "test"}}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		st, _ := e.Info()
		names = append(names, e.Name()+" "+st.ModTime().String())
	}
	return names
}

// A commit log an earlier version left after a crash holds acknowledged
// commits that may be in no other file: Open refuses the store, says what
// to do on one line and changes nothing. Once that version has stopped
// cleanly (its log has no record of the current epoch), Open removes it.
func TestACommitLogWithRecordsOfAnEarlierVersionIsRefused(t *testing.T) {
	payload := []byte("\x01\x03h/x\x05value")
	dir := storeDir(t)
	path := writeOldLog(t, dir, 7, 42, []oldLogRecord{{seq: 7, nonce: 42, payload: payload}, {seq: 8, nonce: 42, payload: payload}}, 64<<10)
	before := listDir(t, dir)
	_, err := Open(Options{Dir: dir, Logger: quietLogger, MaintainEvery: -1})
	if err == nil {
		t.Fatal("the store opened, and its commit log was dropped")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, path) || !strings.Contains(msg, "daemon stop") {
		t.Errorf("message %q: want one line naming the file and saying what to do", msg)
	}
	t.Logf("%v", err)
	if after := listDir(t, dir); !slices.Equal(before, after) {
		t.Errorf("the refused open changed the directory:\n%v\n%v", before, after)
	}

	// What a clean stop leaves: a new epoch, the old records behind it.
	writeOldLog(t, dir, 9, 43, []oldLogRecord{{seq: 7, nonce: 42, payload: payload}, {seq: 8, nonce: 42, payload: payload}}, 64<<10)
	s := openTest(t, Options{Dir: dir})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the clean commit log is still there: %v", err)
	}
	if v, err := s.Vars(); err != nil || v["x"].I != 1 {
		t.Errorf("vars %v, %v", v, err)
	}
}

// Commit logs with nothing to replay are removed: zeros after the header,
// a record torn by the crash (never acknowledged), a record of an older
// epoch, a header cut short.
func TestACleanCommitLogOfAnEarlierVersionIsRemoved(t *testing.T) {
	p := []byte("\x02\x03h/x")
	cases := map[string]func(t *testing.T, dir string){
		"zeros": func(t *testing.T, dir string) { writeOldLog(t, dir, 1, 5, nil, 16<<20) },
		"torn record": func(t *testing.T, dir string) {
			writeOldLog(t, dir, 3, 5, []oldLogRecord{{seq: 3, nonce: 5, payload: p, torn: true}}, 8192)
		},
		"older epoch": func(t *testing.T, dir string) {
			writeOldLog(t, dir, 3, 5, []oldLogRecord{{seq: 3, nonce: 4, payload: p}}, 8192)
		},
		"older seq": func(t *testing.T, dir string) {
			writeOldLog(t, dir, 3, 5, []oldLogRecord{{seq: 2, nonce: 5, payload: p}}, 8192)
		},
		"short header": func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, oldLogName), []byte("whenlog"), 0o600) },
	}
	for name, write := range cases {
		t.Run(name, func(t *testing.T) {
			dir := storeDir(t)
			write(t, dir)
			s := openTest(t, Options{Dir: dir})
			if _, err := os.Stat(filepath.Join(dir, oldLogName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the commit log is still there: %v", err)
			}
			if v, err := s.Vars(); err != nil || v["x"].I != 1 {
				t.Errorf("vars %v, %v", v, err)
			}
		})
	}
}
