package persist

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The commit log makes Commits durable with one fdatasync each, while badger
// runs with SyncWrites off. Layout of Dir/commit.log:
//
//	[0, 4096)   file header: magic "whenlog\x01" (8) | first sequence of the
//	            current epoch (8, le) | nonce (8) | CRC32C of the 24 bytes before (4)
//	[4096, ...) records, packed one after the other:
//	            magic "WLR1" (4) | payload length (4, le) | sequence (8, le) |
//	            CRC32C (4, le) of nonce, length, sequence and payload | payload
//
// A payload is the key operations of one Commit, in the order badger got
// them: opSet | uvarint key length | key | uvarint value length | value, or
// opDelete | uvarint key length | key. They are the final keys (history keys
// with their time and sequence), so replaying a record writes exactly what
// the commit wrote and replaying it twice changes nothing.
//
// The file is zero-filled ahead of the records (16 MiB at creation, grown
// when a group of records does not fit), so that a record overwrites
// allocated blocks in place and fdatasync has no metadata to write.
//
// An epoch is the run of records since the last checkpoint. A checkpoint
// makes badger durable (Store.syncBadger) and then starts a new epoch: a new
// header with the next sequence and a new random nonce, fdatasynced, and
// records again from offset 4096. Records of older epochs left further in
// the file fail the sequence check and the CRC (their nonce differs), so a
// replay stops at the first record that is not the next one of the current
// epoch: a torn tail, zeros or stale bytes.
const (
	logFileName      = "commit.log"
	logHeaderSize    = 4096
	logHeaderUsed    = 28
	logPrealloc      = 16 << 20
	logGrowStep      = 1 << 20
	recHeaderSize    = 20
	recMagic         = 0x3152_4c57 // "WLR1" little-endian
	opSet            = 1
	opDelete         = 2
	maxRecordPayload = 1<<32 - 1

	// DefaultCheckpointBytes is the commit log size after which a
	// checkpoint starts a new epoch (Options.CheckpointBytes).
	DefaultCheckpointBytes = 8 << 20
)

var (
	logMagic   = [8]byte{'w', 'h', 'e', 'n', 'l', 'o', 'g', 1}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// zeros is the source of the zero-fill; it is not on the heap.
	zeros [64 << 10]byte
)

// logFile is what the commit log needs of its file. Sync makes every byte
// written so far durable (fdatasync). Tests wrap it to inject faults.
type logFile interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Close() error
}

// dataSyncFile is a logFile whose Sync is fdatasync, through AIO where
// the kernel takes it (aio_linux.go).
type dataSyncFile struct {
	*os.File
	fd  int
	aio *aioSyncer // nil: a plain fdatasync
	raw bool       // record writes are raw pwrite calls (rawwrite_linux.go)
}

// errAIOUnsupported is returned by aioSyncer.sync when it submitted
// nothing (an old kernel, a sandbox, no AIO resources left): the commit
// log falls back to fdatasync for good.
var errAIOUnsupported = errors.New("aio fdatasync refused")

// errAIOBroken is returned by aioSyncer.sync when waiting for a submitted
// sync failed: its outcome is unknown and the syncer is not used again.
var errAIOBroken = errors.New("aio fdatasync lost")

func (f *dataSyncFile) Sync() error {
	if f.aio != nil {
		err := f.aio.sync(f.fd)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errAIOUnsupported):
			// Nothing in flight: fdatasync, now and from now on.
			f.aio.destroy()
			f.aio = nil
		case errors.Is(err, errAIOBroken):
			// Whether this sync happened is unknown: it fails, and the
			// next ones use fdatasync (destroy waits for it to end).
			f.aio.destroy()
			f.aio = nil
			return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		default:
			return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		}
	}
	for {
		err := unix.Fdatasync(f.fd)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINTR) {
			return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		}
	}
}

// Close closes the file and the AIO context.
func (f *dataSyncFile) Close() error {
	if f.aio != nil {
		f.aio.destroy()
	}
	return f.File.Close()
}

// commitLog is the write side of commit.log. Its fields are used by Open,
// by the goroutine leading a group commit (one at a time, see Store.submit)
// and by Close, never concurrently.
type commitLog struct {
	f       logFile
	created bool  // the file did not exist: its directory entry needs a sync
	size    int64 // file size; zeros from off to size
	off     int64 // where the next record goes
	seq     uint64
	nonce   uint64
	header  [logHeaderUsed]byte
	recHdr  [recHeaderSize]byte
	// failed is set when a failure left records that might still be
	// replayed as if committed; every later commit is refused.
	failed error
}

// openCommitLog opens or creates dir/commit.log. wrap, when not nil,
// wraps the file (fault injection in tests). plain makes it sync with a
// plain fdatasync, never through AIO.
func openCommitLog(dir string, wrap func(logFile) logFile, plain bool) (*commitLog, error) {
	path := filepath.Join(dir, logFileName)
	_, err := os.Stat(path)
	created := errors.Is(err, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	df := &dataSyncFile{File: f, fd: int(f.Fd())}
	df.raw = rawWritable(df.fd)
	if !plain {
		df.aio, _ = newAIOSyncer() // nil where refused: fdatasync
	}
	var lf logFile = df
	if wrap != nil {
		lf = wrap(lf)
	}
	return &commitLog{f: lf, created: created, size: st.Size(), off: logHeaderSize, seq: 1}, nil
}

// replay calls apply with the payload of every valid record of the current
// epoch, in order, and leaves seq at the sequence after the last one. A
// file without a valid header (new, or torn while a checkpoint rewrote it,
// which happens only once badger is durable) has nothing to replay. Each
// payload is a new slice that apply may keep.
func (l *commitLog) replay(apply func(payload []byte) error) (records int, err error) {
	hdr := l.header[:]
	if l.size < logHeaderSize {
		return 0, nil
	}
	if _, err := l.f.ReadAt(hdr, 0); err != nil {
		return 0, fmt.Errorf("read commit log header: %w", err)
	}
	if [8]byte(hdr[:8]) != logMagic || crc32.Checksum(hdr[:24], castagnoli) != binary.LittleEndian.Uint32(hdr[24:]) {
		return 0, nil
	}
	l.seq = binary.LittleEndian.Uint64(hdr[8:])
	l.nonce = binary.LittleEndian.Uint64(hdr[16:])
	off := int64(logHeaderSize)
	rh := l.recHdr[:]
	for off+recHeaderSize <= l.size {
		if _, err := l.f.ReadAt(rh, off); err != nil {
			return records, fmt.Errorf("read commit log at %d: %w", off, err)
		}
		n := int64(binary.LittleEndian.Uint32(rh[4:]))
		if binary.LittleEndian.Uint32(rh) != recMagic ||
			binary.LittleEndian.Uint64(rh[8:]) != l.seq ||
			n > l.size-off-recHeaderSize {
			break
		}
		payload := make([]byte, n)
		if _, err := l.f.ReadAt(payload, off+recHeaderSize); err != nil {
			return records, fmt.Errorf("read commit log at %d: %w", off, err)
		}
		if l.checksum(rh, payload) != binary.LittleEndian.Uint32(rh[16:]) {
			break
		}
		if err := apply(payload); err != nil {
			return records, fmt.Errorf("replay commit log record %d: %w", l.seq, err)
		}
		records++
		l.seq++
		off += recHeaderSize + n
	}
	return records, nil
}

// checksum is the CRC32C of the nonce, the record header fields before the
// CRC (magic excluded) and the payload.
func (l *commitLog) checksum(recHdr, payload []byte) uint32 {
	var nonce [8]byte
	binary.LittleEndian.PutUint64(nonce[:], l.nonce)
	c := crc32.Update(0, castagnoli, nonce[:])
	c = crc32.Update(c, castagnoli, recHdr[4:16])
	return crc32.Update(c, castagnoli, payload)
}

// startEpoch makes the file at least logPrealloc bytes, writes a header with
// the next sequence and a new nonce and syncs it: every record written so
// far is from then on ignored. The caller must have made badger durable.
func (l *commitLog) startEpoch() error {
	if err := l.ensureSize(logPrealloc); err != nil {
		return err
	}
	var nonce [8]byte
	rand.Read(nonce[:])
	hdr := l.header[:]
	copy(hdr, logMagic[:])
	binary.LittleEndian.PutUint64(hdr[8:], l.seq)
	copy(hdr[16:24], nonce[:])
	binary.LittleEndian.PutUint32(hdr[24:], crc32.Checksum(hdr[:24], castagnoli))
	if _, err := l.f.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("write commit log header: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync commit log header: %w", err)
	}
	l.nonce = binary.LittleEndian.Uint64(nonce[:])
	l.off = logHeaderSize
	return nil
}

// ensureSize zero-fills the file up to at least n bytes (rounded up to
// logGrowStep) and syncs it.
func (l *commitLog) ensureSize(n int64) error {
	if n <= l.size {
		return nil
	}
	n = (n + logGrowStep - 1) / logGrowStep * logGrowStep
	for off := l.size; off < n; {
		chunk := zeros[:min(int64(len(zeros)), n-off)]
		if _, err := l.f.WriteAt(chunk, off); err != nil {
			return fmt.Errorf("grow commit log: %w", err)
		}
		off += int64(len(chunk))
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("grow commit log: %w", err)
	}
	l.size = n
	return nil
}

// append writes one record per pending commit, in order, and syncs them:
// when it returns nil all of them are durable. On an error none of them
// counts as written (off and seq stay), but some may be on disk: the
// caller must start a new epoch before writing more.
func (l *commitLog) append(group []*pending) error {
	var total int64
	for _, p := range group {
		total += int64(len(p.rec))
	}
	if err := l.ensureSize(l.off + total); err != nil {
		return err
	}
	off, seq := l.off, l.seq
	for _, p := range group {
		rec := p.rec
		payload := rec[recHeaderSize:]
		binary.LittleEndian.PutUint32(rec, recMagic)
		binary.LittleEndian.PutUint32(rec[4:], uint32(len(payload)))
		binary.LittleEndian.PutUint64(rec[8:], seq)
		binary.LittleEndian.PutUint32(rec[16:], l.checksum(rec[:recHeaderSize], payload))
		if _, err := l.f.WriteAt(rec, off); err != nil {
			return fmt.Errorf("write commit log: %w", err)
		}
		off += int64(len(rec))
		seq++
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync commit log: %w", err)
	}
	l.off, l.seq = off, seq
	return nil
}

// appendOp encodes one key operation onto a record payload.
func appendOp(rec []byte, op byte, k, v []byte) []byte {
	rec = append(rec, op)
	rec = binary.AppendUvarint(rec, uint64(len(k)))
	rec = append(rec, k...)
	if op == opSet {
		rec = binary.AppendUvarint(rec, uint64(len(v)))
		rec = append(rec, v...)
	}
	return rec
}

// decodeOp splits the first key operation off a record payload.
func decodeOp(p []byte) (op byte, k, v, rest []byte, err error) {
	bad := errors.New("bad operation in commit log record")
	if len(p) == 0 {
		return 0, nil, nil, nil, bad
	}
	op, p = p[0], p[1:]
	field := func() []byte {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w) {
			err = bad
			return nil
		}
		f := p[w : w+int(n) : w+int(n)]
		p = p[w+int(n):]
		return f
	}
	switch op {
	case opSet:
		k = field()
		if err == nil {
			v = field()
		}
	case opDelete:
		k = field()
	default:
		err = bad
	}
	if err != nil {
		return 0, nil, nil, nil, err
	}
	return op, k, v, p, nil
}
