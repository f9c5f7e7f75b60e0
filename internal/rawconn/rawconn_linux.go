package rawconn

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a unix socket connection whose Read and Write are raw system
// calls on its non-blocking descriptor. Everything else (Close, deadlines,
// addresses, SyscallConn) is the net.UnixConn's.
type Conn struct {
	*net.UnixConn
	rc syscall.RawConn
}

// Wrap returns c as a *Conn when it is a unix socket connection, and c
// itself otherwise.
func Wrap(c net.Conn) net.Conn {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return c
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{UnixConn: uc, rc: rc}
}

// Read reads into p, waiting in the network poller while nothing is there.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno unix.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if errno != unix.EINTR {
				return errno != unix.EAGAIN
			}
		}
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return 0, c.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return int(n), nil
}

// Write writes all of p, waiting in the network poller while the socket's
// buffer is full. Like net.Conn's, one Write holds the connection's write
// lock until it is done, so that concurrent writes do not interleave.
func (c *Conn) Write(p []byte) (int, error) {
	done := 0
	var errno unix.Errno
	short := false
	err := c.rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done))
			switch e {
			case 0:
				if n == 0 {
					short = true
					return true
				}
				done += int(n)
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
	case errno != 0:
		err = errno
	case short:
		err = io.ErrShortWrite
	}
	if err != nil {
		return done, c.opError("write", err)
	}
	return done, nil
}

// opError wraps err the way net.Conn does, so that errors.Is finds
// net.ErrClosed, os.ErrDeadlineExceeded or the errno. An error of the raw
// connection is already a *net.OpError (of op "raw-read" or "raw-write"):
// its cause is wrapped again under op.
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	if errno, ok := err.(unix.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "unix", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
