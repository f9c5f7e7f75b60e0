//go:build darwin || freebsd

package peercred

import "golang.org/x/sys/unix"

// ofFD reads LOCAL_PEERCRED (what getpeereid reads): the peer's effective
// credentials when it connected (or, for a client's socket, when the server
// called listen). On macOS LOCAL_PEERPID adds the peer's pid.
func ofFD(fd int) (Cred, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Cred{}, err
	}
	return Cred{UID: x.Uid, PID: peerPID(fd)}, nil
}
