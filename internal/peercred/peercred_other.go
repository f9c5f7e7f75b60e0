//go:build !linux && !darwin && !freebsd

package peercred

// ofFD cannot read a peer's credentials on this system.
func ofFD(int) (Cred, error) { return Cred{}, ErrUnsupported }
