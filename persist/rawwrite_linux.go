//go:build linux && (amd64 || arm64)

package persist

import (
	"io"
	"io/fs"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WriteAt writes the commit log with raw pwrite calls, which do not wake
// the Go runtime's monitor thread as a call through the syscall package
// does when the daemon was idle (see internal/rawconn). The writes go to
// the page cache of a preallocated file: like badger's own stores into its
// memory-mapped files, they do not wait for the disk; the sync does.
func (f *dataSyncFile) WriteAt(p []byte, off int64) (int, error) {
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
