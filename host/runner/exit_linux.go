package runner

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// waitExited blocks until process pid, a child of ours, has exited,
// without reaping it. The wait is on a pidfd polled by the runtime's
// network poller, so a waiting run holds a goroutine, not an OS thread.
// Kernels without pidfds (before 5.3) get a blocking waitid instead.
func waitExited(pid int) {
	h, err := openHandle(pid)
	if err == nil {
		defer h.close()
		if err = h.wait(); err == nil {
			return
		}
	}
	waitExitedBlocking(pid)
}

// waitExitedBlocking is waitExited on one OS thread: waitid with WNOWAIT.
func waitExitedBlocking(pid int) {
	var info unix.Siginfo
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, unix.P_PID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|unix.WNOWAIT, 0, 0)
		if e != syscall.EINTR {
			return
		}
	}
}

// handle refers to one process through a pidfd: signals reach that process
// or none, never a later process given the same pid.
type handle struct {
	pid int
	f   *os.File // the pidfd, non-blocking, registered with the poller
}

func openHandle(pid int) (*handle, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.EINVAL) { // before 5.10: no PIDFD_NONBLOCK
		if fd, err = unix.PidfdOpen(pid, 0); err == nil {
			err = unix.SetNonblock(fd, true)
			if err != nil {
				unix.Close(fd)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return &handle{pid: pid, f: os.NewFile(uintptr(fd), "pidfd")}, nil
}

// signal sends sig to the process; one that is gone is not an error.
func (h *handle) signal(sig syscall.Signal) error {
	rc, err := h.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.PidfdSendSignal(int(fd), sig, nil, 0) }); err != nil {
		return err
	}
	if errors.Is(serr, unix.ESRCH) {
		return nil
	}
	return serr
}

// wait returns once the process has exited, or with an error once the
// deadline set by setDeadline passed.
func (h *handle) wait() error {
	rc, err := h.f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool {
		// A pidfd is readable once its process has exited.
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 0)
			if err == unix.EINTR {
				continue
			}
			return err != nil || n > 0
		}
	})
}

func (h *handle) setDeadline(t time.Time) { h.f.SetReadDeadline(t) }

func (h *handle) close() { h.f.Close() }

// procStat is what findRun reads of a process in /proc/PID/stat.
type procStat struct {
	pid, ppid, pgrp int
	start           string // start time in clock ticks since boot
	zombie          bool
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime priority nice threads
	// itrealvalue starttime ...
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return procStat{}, false
	}
	st := procStat{pid: pid, start: f[19], zombie: f[0] == "Z" || f[0] == "X"}
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	return st, true
}

// markerOf returns the value of MarkerVar in the environment of process
// pid ("" when absent or unreadable).
func markerOf(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	key := []byte(MarkerVar + "=")
	for len(b) > 0 {
		kv, rest, _ := bytes.Cut(b, []byte{0})
		if v, ok := bytes.CutPrefix(kv, key); ok {
			return string(v)
		}
		b = rest
	}
	return ""
}

// snapshot is one pass over /proc: the live processes other than this
// one, with their markers.
type snapshot struct {
	procs  []procStat
	marker map[int]string // pid -> MarkerVar's value, for those that have one
}

// scanner takes snapshots of /proc for every sweep of every run. Sweeps
// asked for while a pass runs share the next pass, so that many runs
// ending or cancelled together cost a few passes, not one each. A
// process's marker is read once (its environment as exec'd does not
// change), keyed by pid and start time.
type scanner struct {
	mu      sync.Mutex
	busy    bool
	waiters []chan *snapshot
	seen    map[int]seenProc
}

type seenProc struct{ start, marker string }

var procScanner = &scanner{seen: map[int]seenProc{}}

// snapshot returns a pass over /proc begun after the call.
func (sc *scanner) snapshot() *snapshot {
	ch := make(chan *snapshot, 1)
	sc.mu.Lock()
	sc.waiters = append(sc.waiters, ch)
	if !sc.busy {
		sc.busy = true
		go sc.loop()
	}
	sc.mu.Unlock()
	return <-ch
}

// loop takes passes while sweeps wait for one, then ends.
func (sc *scanner) loop() {
	for {
		sc.mu.Lock()
		waiters := sc.waiters
		sc.waiters = nil
		if len(waiters) == 0 {
			sc.busy = false
			sc.mu.Unlock()
			return
		}
		sc.mu.Unlock()
		snap := sc.pass()
		for _, ch := range waiters {
			ch <- snap
		}
	}
}

func (sc *scanner) pass() *snapshot {
	snap := &snapshot{marker: map[int]string{}}
	d, err := os.Open("/proc")
	if err != nil {
		return snap
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	self := os.Getpid()
	live := make(map[int]seenProc, len(names))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		st, ok := readStat(pid)
		if !ok || st.zombie {
			continue
		}
		snap.procs = append(snap.procs, st)
		seen, ok := sc.seen[pid]
		if !ok || seen.start != st.start {
			seen = seenProc{start: st.start, marker: markerOf(pid)}
		}
		live[pid] = seen
		if seen.marker != "" {
			snap.marker[pid] = seen.marker
		}
	}
	sc.seen = live // only loop touches seen
	return snap
}

// findRun returns handles on the live processes of a run: those whose
// MarkerVar is dir, their descendants, and the members of process group
// pgid (when ownGroup says the group is still the run's, or when a process
// carrying the marker is in it). It reads /proc; a process that ended
// meanwhile, or whose pid was taken by another process between the scan
// and the opening of its pidfd (its start time differs), is left out.
func findRun(dir string, pgid int, ownGroup bool) []*handle {
	snap := procScanner.snapshot()
	in := map[int]bool{}
	for _, st := range snap.procs {
		if snap.marker[st.pid] == dir {
			in[st.pid] = true
			if st.pgrp == pgid {
				ownGroup = true
			}
		}
	}
	if pgid > 0 && ownGroup {
		for _, st := range snap.procs {
			if st.pgrp == pgid {
				in[st.pid] = true
			}
		}
	}
	for grew := len(in) > 0; grew; { // descendants
		grew = false
		for _, st := range snap.procs {
			if !in[st.pid] && in[st.ppid] {
				in[st.pid], grew = true, true
			}
		}
	}
	var hs []*handle
	for _, st := range snap.procs {
		if !in[st.pid] {
			continue
		}
		h, err := openHandle(st.pid)
		if err != nil {
			continue
		}
		if now, ok := readStat(st.pid); !ok || now.start != st.start {
			h.close()
			continue
		}
		hs = append(hs, h)
	}
	return hs
}
