package persist

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrDiskFull is returned (wrapped) by Commit when the disk lacks the room
// the database needs to take the batch safely. Nothing is stored.
var ErrDiskFull = errors.New("disk full")

// Badger writes its value log and memtable logs through memory-mapped files
// that it creates sparse. A store into a hole of such a mapping on a full
// disk is not an error badger can return: the kernel kills the process with
// SIGBUS. So before each commit the store makes sure the filesystem still
// has room for every hole of those files, plus the batch and a margin; a
// commit that does not fit is refused with ErrDiskFull and the daemon goes
// on serving.
const (
	// spaceMargin is kept free beyond the holes: the batch itself and the
	// first writes into a file badger may rotate to.
	spaceMargin = 2 << 20
	// spaceComfort is free space above which the holes need not be
	// counted: they can never add up to that much with our badger options.
	spaceComfort = 256 << 20
)

// A reading of at least spaceComfort free is trusted for the commits of
// the next roomyFor, up to roomyBytes of records: a statfs per commit was
// one more system call on every set's path (see internal/rawconn for what
// each costs). Filling that much of a disk within the window takes more
// than the store itself can write in it, and more than 25 GB/s from others.
const (
	roomyFor   = 10 * time.Millisecond
	roomyBytes = 16 << 20
)

// roomy is the trusted reading: until when, and how many bytes are left.
// Times are passed in, for the tests.
type roomy struct {
	mu    sync.Mutex
	until time.Time
	left  int64
	seen  time.Time // when the newest reading applied was asked for
}

// take reports whether n bytes fit in the reading trusted at now, and
// counts them.
func (r *roomy) take(n int, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.left < int64(n) || !now.Before(r.until) {
		return false
	}
	r.left -= int64(n)
	return true
}

// trust starts a window after an ample reading asked for at asked, unless
// a newer reading was applied meanwhile (concurrent commits ask at once).
func (r *roomy) trust(asked time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if asked.Before(r.seen) {
		return
	}
	r.seen, r.until, r.left = asked, asked.Add(roomyFor), roomyBytes
}

// distrust ends the window after a reading that was not ample, however
// old: the next commit asks the filesystem again.
func (r *roomy) distrust(asked time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if asked.After(r.seen) {
		r.seen = asked
	}
	r.until, r.left = time.Time{}, 0
}

// checkSpace returns an error wrapping ErrDiskFull when the filesystem of
// the store cannot take n more bytes safely.
func (s *Store) checkSpace(n int) error {
	asked := time.Now()
	if s.roomy.take(n, asked) {
		return nil
	}
	free, err := freeBytes(s.opts.Dir)
	if err != nil {
		return nil // cannot tell: let the write itself report
	}
	if free >= spaceComfort {
		s.roomy.trust(asked)
		return nil
	}
	s.roomy.distrust(asked)
	need := int64(n) + spaceMargin + mappedHoles(s.opts.Dir)
	if free < need {
		return fmt.Errorf("%w: %s has %d KiB free, the database needs %d KiB to write safely", ErrDiskFull, s.opts.Dir, free>>10, need>>10)
	}
	return nil
}

// freeBytes is what an unprivileged writer may still use on dir's filesystem.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// mappedHoles adds up the unallocated bytes of badger's memory-mapped log
// files (*.mem, *.vlog) in dir.
func mappedHoles(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var holes int64
	for _, de := range entries {
		name := de.Name()
		if !strings.HasSuffix(name, ".mem") && !strings.HasSuffix(name, ".vlog") {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(dir, name), &st) != nil {
			continue
		}
		if h := st.Size - st.Blocks*512; h > 0 {
			holes += h
		}
	}
	return holes
}
