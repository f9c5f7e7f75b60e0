// Package rawconn gives the daemon's socket connections reads and writes
// that do not wake the Go runtime's monitor thread.
//
// Every system call made through the syscall package tells the runtime it
// may block (entersyscall). When the process was idle, that wakes the
// runtime's monitor thread (sysmon), which then polls every 20 µs until
// the process is idle again, so that it can hand the processor of a
// blocked call to another thread. A set costs the daemon a read, a write
// and the commit log's calls; with the monitor woken around each of them,
// half of the daemon's thread switches per set were the monitor's, and on
// a small virtual machine a thread switch costs more than the work of a
// set (docs/internals.md, "System calls that do not wake the runtime").
//
// Reads and writes on a non-blocking socket never block: they either
// move bytes or fail with EAGAIN. Conn makes them as raw system calls,
// which the runtime does not track, and waits for readiness in the
// network poller as net.Conn does, with its deadlines.
package rawconn

import "net"

// Listener wraps the connections its Listener accepts with Wrap.
type Listener struct{ net.Listener }

// Accept waits for the next connection and wraps it.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
