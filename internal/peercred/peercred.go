// Package peercred reads who is at the other end of a unix socket
// connection, as the kernel recorded it when the connection was made:
// SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS and FreeBSD. The daemon
// uses it to serve only its own user; the client, to talk only to a daemon
// of its own user. It owns no state and may be called from any goroutine.
package peercred

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Cred is the user and process at the other end of a connection.
type Cred struct {
	UID uint32
	PID int32 // 0 where the system does not say
}

// ErrUnsupported is returned on systems where whenlua cannot read a peer's
// credentials; callers refuse the peer rather than trust it unchecked.
var ErrUnsupported = errors.New("peer credentials are not supported on this system")

// Of returns the credentials of c's peer. c must be a unix socket
// connection (or wrap one through syscall.Conn).
func Of(c net.Conn) (Cred, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Cred{}, fmt.Errorf("peer credentials: %T is not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		cred Cred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) { cred, gerr = ofFD(int(fd)) }); err != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", err)
	}
	if gerr != nil {
		return Cred{}, fmt.Errorf("peer credentials: %w", gerr)
	}
	return cred, nil
}
