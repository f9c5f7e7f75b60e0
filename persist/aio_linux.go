//go:build linux && (amd64 || arm64)

package persist

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// aioSyncer runs fdatasync through Linux native AIO (IOCB_CMD_FDSYNC) and
// waits for it on an eventfd in Go's network poller. A plain fdatasync
// blocks its thread in a system call: with one processor, the Go scheduler
// then hands the processor to another thread after 20 µs and takes it back
// when the call returns, a few thread switches per commit. Waiting in the
// poller leaves the processor to the other goroutines, or idle, like any
// network wait.
//
// Its calls are raw system calls, which do not wake the runtime's monitor
// thread (see internal/rawconn): io_submit of a sync only queues it, the
// eventfd is non-blocking, and io_getevents is asked with a zero timeout
// for the completion the eventfd has already counted.
type aioSyncer struct {
	ctx    uintptr         // aio_context_t
	efd    *os.File        // the eventfd, read through the poller
	efdRaw syscall.RawConn // its poller wait
	efdNum int             // its descriptor, for the iocb
	seq    uint64          // tags each request, checked in its completion
	iocb   iocb
	iocbs  [1]*iocb
	events [1]ioEvent
	buf    [8]byte
}

// iocb and ioEvent are the kernel's struct iocb and struct io_event on a
// little-endian 64-bit machine.
type iocb struct {
	data      uint64
	key       uint32
	rwFlags   uint32
	opcode    uint16
	reqprio   int16
	fildes    uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resfd     uint32
}

type ioEvent struct {
	data uint64
	obj  uint64
	res  int64
	res2 int64
}

const (
	iocbCmdFdsync = 3
	iocbFlagResfd = 1 << 0
)

// newAIOSyncer sets up an AIO context and its eventfd, or returns an error
// when the kernel or a sandbox refuses them.
func newAIOSyncer() (*aioSyncer, error) {
	a := &aioSyncer{}
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&a.ctx)), 0); e != 0 {
		return nil, fmt.Errorf("io_setup: %w", e)
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		a.destroy()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	a.efd, a.efdNum = os.NewFile(uintptr(fd), "commit-log-eventfd"), fd
	if a.efdRaw, err = a.efd.SyscallConn(); err != nil {
		a.destroy()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	a.iocbs[0] = &a.iocb
	return a, nil
}

// sync makes fd's data durable. One sync at a time. An error wrapping
// errAIOUnsupported means nothing was submitted; one wrapping errAIOBroken
// that the wait failed, and the syncer must not be used again (destroy
// waits for what is in flight); any other is the fdatasync's own.
func (a *aioSyncer) sync(fd int) error {
	a.seq++
	a.iocb = iocb{data: a.seq, opcode: iocbCmdFdsync, fildes: uint32(fd), flags: iocbFlagResfd, resfd: uint32(a.efdNum)}
	for {
		_, _, e := unix.RawSyscall(unix.SYS_IO_SUBMIT, a.ctx, 1, uintptr(unsafe.Pointer(&a.iocbs[0])))
		if e == 0 {
			break
		}
		if e == unix.EINTR {
			continue
		}
		// Nothing was submitted: a plain fdatasync does the same.
		return fmt.Errorf("%w: io_submit: %w", errAIOUnsupported, e)
	}
	// The eventfd counts completions; reading it resets the count.
	var errno unix.Errno
	err := a.efdRaw.Read(func(fd uintptr) bool {
		for {
			_, _, errno = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&a.buf[0])), uintptr(len(a.buf)))
			if errno != unix.EINTR {
				return errno != unix.EAGAIN
			}
		}
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return fmt.Errorf("%w: wait: %w", errAIOBroken, err)
	}
	var now unix.Timespec // zero: the completion is there, do not wait
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_IO_GETEVENTS, a.ctx, 1, 1, uintptr(unsafe.Pointer(&a.events[0])), uintptr(unsafe.Pointer(&now)), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("%w: io_getevents: %w", errAIOBroken, e)
		}
		if n != 1 || a.events[0].data != a.seq {
			return fmt.Errorf("%w: io_getevents: %d events, request %d, want %d", errAIOBroken, n, a.events[0].data, a.seq)
		}
		break
	}
	if res := a.events[0].res; res < 0 {
		return unix.Errno(-res)
	}
	return nil
}

// destroy releases the context and the eventfd.
func (a *aioSyncer) destroy() {
	if a.ctx != 0 {
		unix.Syscall(unix.SYS_IO_DESTROY, a.ctx, 0, 0)
		a.ctx = 0
	}
	if a.efd != nil {
		a.efd.Close()
		a.efd = nil
	}
}
