package peercred

import "golang.org/x/sys/unix"

// ofFD reads SO_PEERCRED: the peer's credentials when it connected (or,
// for a client's socket, when the server called listen).
func ofFD(fd int) (Cred, error) {
	u, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Cred{}, err
	}
	return Cred{UID: u.Uid, PID: u.Pid}, nil
}
