package persist

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Badger writes its value log and memtable logs through memory-mapped files
// that it creates sparse. A store into a hole of such a mapping on a full
// disk is not an error badger can return: the kernel kills the process with
// SIGBUS. So before each commit the store makes sure the filesystem has
// room for the batch, a margin, and, when space is short, every hole of
// those files, and a table that a flush or compaction writes (badger
// creates a table sparse too and copies it into a mapping); a commit that
// does not fit is refused with ErrDiskFull and the daemon goes on serving.
const (
	// spaceMargin is kept free beyond the batch and the holes: the first
	// writes into a file badger may rotate to.
	spaceMargin = 2 << 20
	// spaceComfort is free space above which the holes need not be
	// counted: with our badger options they never add up to that much.
	spaceComfort = 256 << 20
)

// checkSpace returns an error wrapping ErrDiskFull when the filesystem of
// the store cannot take n more bytes safely.
func (s *Store) checkSpace(n int) error {
	var st unix.Statfs_t
	if err := unix.Statfs(s.opts.Dir, &st); err != nil {
		return nil // cannot tell: let the write itself report
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free >= spaceComfort {
		return nil
	}
	// A flush writes a table of about a memtable's size, a compaction
	// tables of BaseTableSize.
	bo := s.db.Opts()
	need := int64(n) + spaceMargin + mappedHoles(s.opts.Dir) + bo.MemTableSize + bo.BaseTableSize
	if free < need {
		return fmt.Errorf("%w: %s has %d KiB free, the database needs %d KiB to write safely", ErrDiskFull, s.opts.Dir, free>>10, need>>10)
	}
	return nil
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
		var st unix.Stat_t
		if unix.Stat(filepath.Join(dir, name), &st) != nil {
			continue
		}
		if h := int64(st.Size) - int64(st.Blocks)*512; h > 0 {
			holes += h
		}
	}
	return holes
}
