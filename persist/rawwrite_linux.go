//go:build linux && (amd64 || arm64)

package persist

import (
	"io"
	"io/fs"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The commit log writes its records with raw pwrite calls, which do not
// wake the Go runtime's monitor thread as a call through the syscall
// package does when the daemon was idle (see internal/rawconn): with the
// monitor woken on each commit, the daemon spent 40-100 µs more CPU and
// two more thread switches per set.
//
// A raw call is not handed off if it blocks: with the daemon on one
// processor, nothing else runs until it returns. So it is used only for
// what returns at once in practice, a record-sized write into the page
// cache of a preallocated file on a local filesystem (the same exposure as
// badger's own stores into its memory-mapped files). Larger writes (the
// zero-fill, a huge batch) and filesystems over a network or in user space,
// where a write may wait for a server, take the ordinary path.
const rawWriteMax = 16 << 10

// localFilesystems are the statfs magic numbers of filesystems whose
// buffered writes do not wait for a server.
var localFilesystems = map[int64]bool{
	unix.EXT4_SUPER_MAGIC:  true, // ext2, ext3, ext4
	unix.XFS_SUPER_MAGIC:   true,
	unix.BTRFS_SUPER_MAGIC: true,
	unix.TMPFS_MAGIC:       true,
	unix.F2FS_SUPER_MAGIC:  true,
}

// rawWritable reports whether fd's filesystem takes raw record writes.
func rawWritable(fd int) bool {
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil {
		return false
	}
	return localFilesystems[int64(st.Type)]
}

// WriteAt writes p at off: with raw pwrite calls when it may (see above).
func (f *dataSyncFile) WriteAt(p []byte, off int64) (int, error) {
	if !f.raw || len(p) > rawWriteMax {
		return f.File.WriteAt(p, off)
	}
	done := 0
	for done < len(p) {
		n, _, e := unix.RawSyscall6(unix.SYS_PWRITE64, uintptr(f.fd), uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done), uintptr(off+int64(done)), 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return done, &fs.PathError{Op: "write", Path: f.Name(), Err: e}
		case n == 0:
			return done, &fs.PathError{Op: "write", Path: f.Name(), Err: io.ErrShortWrite}
		}
		done += int(n)
	}
	return done, nil
}
