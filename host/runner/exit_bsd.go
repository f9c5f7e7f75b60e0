//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package runner

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waitExited blocks until process pid, a child of ours, has exited,
// without reaping it: a kqueue of its own watches the process
// (EVFILT_PROC, NOTE_EXIT) and is polled by the runtime's network poller,
// so a waiting run holds a goroutine, not an OS thread. When the kqueue
// cannot be polled, the wait blocks one thread in kevent instead.
func waitExited(pid int) {
	for {
		kq, err := unix.Kqueue()
		if err == nil {
			waitKqueue(kq, pid)
			return
		}
		// Out of descriptors: try again shortly rather than reap early.
		time.Sleep(100 * time.Millisecond)
	}
}

func waitKqueue(kq, pid int) {
	var ev unix.Kevent_t
	unix.SetKevent(&ev, pid, unix.EVFILT_PROC, unix.EV_ADD|unix.EV_ONESHOT)
	ev.Fflags = unix.NOTE_EXIT
	if _, err := unix.Kevent(kq, []unix.Kevent_t{ev}, nil, nil); err != nil {
		unix.Close(kq)
		return // ESRCH: it has exited already
	}
	out := make([]unix.Kevent_t, 1)
	if err := unix.SetNonblock(kq, true); err == nil {
		f := os.NewFile(uintptr(kq), "kqueue")
		defer f.Close()
		rc, err := f.SyscallConn()
		if err != nil {
			blockKevent(int(f.Fd()), out)
			return
		}
		err = rc.Read(func(fd uintptr) bool {
			n, err := unix.Kevent(int(fd), nil, out, &unix.Timespec{})
			return n > 0 || (err != nil && err != unix.EINTR)
		})
		if err != nil { // not pollable here: one thread waits
			rc.Control(func(fd uintptr) { blockKevent(int(fd), out) })
		}
		return
	}
	blockKevent(kq, out)
	unix.Close(kq)
}

func blockKevent(kq int, out []unix.Kevent_t) {
	for {
		n, err := unix.Kevent(kq, nil, out, nil)
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			return
		}
	}
}

// handle would refer to one process of a run outside its process group;
// these systems give no way here to find such processes (see findRun).
type handle struct{ pid int }

func (h *handle) signal(syscall.Signal) error { return nil }
func (h *handle) wait() error                 { return nil }
func (h *handle) setDeadline(time.Time)       {}
func (h *handle) close()                      {}

// findRun finds nothing: on these systems a run is contained by its
// process group alone, and a process that leaves the group (setsid) is not
// followed.
func findRun(dir string, pgid int, ownGroup bool) []*handle { return nil }
