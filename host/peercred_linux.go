package host

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerCred is who is at the other end of an accepted connection.
type peerCred struct {
	UID uint32
	PID int32
	Err error // non-nil when the credentials could not be read
}

// peerCredOf reads the credentials the kernel recorded for the peer of a
// unix socket connection when it connected (SO_PEERCRED).
func peerCredOf(c net.Conn) peerCred {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peerCred{Err: fmt.Errorf("peer credentials: %T is not a socket", c)}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return peerCred{Err: fmt.Errorf("peer credentials: %w", err)}
	}
	var (
		cred *unix.Ucred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peerCred{Err: fmt.Errorf("peer credentials: %w", err)}
	}
	if gerr != nil {
		return peerCred{Err: fmt.Errorf("peer credentials: %w", gerr)}
	}
	if cred == nil {
		return peerCred{Err: errors.New("peer credentials: none")}
	}
	return peerCred{UID: cred.Uid, PID: cred.Pid}
}
