package host

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// daemonHome returns the paths of a fresh home in a short temp directory
// (a socket path must stay under 108 bytes).
func daemonHome(tb testing.TB) whenlua.Paths {
	tb.Helper()
	dir, err := os.MkdirTemp("", "wld")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	p, err := whenlua.ResolvePaths(filepath.Join(dir, "h"))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// runningDaemon is RunDaemon running in a goroutine of the test.
type runningDaemon struct {
	cancel context.CancelFunc
	done   chan error
	ping   whenlua.Ping
}

// startDaemon runs RunDaemon on p and waits until it serves; the daemon is
// stopped at the end of the test.
func startDaemon(tb testing.TB, p whenlua.Paths) *runningDaemon {
	tb.Helper()
	return startDaemonWith(tb, p, EngineOptions{PollEvery: -1, Grace: 200 * time.Millisecond}, nil)
}

// startDaemonWith is startDaemon with the engine options eo and a logger
// (nil: none).
func startDaemonWith(tb testing.TB, p whenlua.Paths, eo EngineOptions, log *slog.Logger) *runningDaemon {
	tb.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &runningDaemon{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan whenlua.Ping, 1)
	go func() {
		d.done <- RunDaemon(ctx, DaemonOptions{
			Paths:  p,
			Logger: log,
			Engine: eo,
			Ready:  func(pg whenlua.Ping) { ready <- pg },
		})
	}()
	select {
	case d.ping = <-ready:
	case err := <-d.done:
		cancel()
		tb.Fatalf("daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		tb.Fatal("daemon not ready after 30s")
	}
	tb.Cleanup(func() { d.stop(tb) })
	return d
}

// stop cancels the daemon and waits for RunDaemon to return (once).
func (d *runningDaemon) stop(tb testing.TB) {
	tb.Helper()
	if d.done == nil {
		return
	}
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			tb.Errorf("RunDaemon: %v", err)
		}
	case <-time.After(30 * time.Second):
		tb.Fatal("RunDaemon did not return 30s after cancel")
	}
	d.done = nil
}

// listenAt makes home p and listens on its socket path, as something
// other than the daemon.
func listenAt(t *testing.T, p whenlua.Paths) net.Listener {
	t.Helper()
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", p.Socket)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestASecondDaemonOnTheSameHomeGetsTheRunningPid(t *testing.T) {
	p := daemonHome(t)
	startDaemon(t, p)
	err := RunDaemon(context.Background(), DaemonOptions{Paths: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var ar *AlreadyRunningError
	if !errors.As(err, &ar) || ar.PID != os.Getpid() || !strings.Contains(err.Error(), p.Home) {
		t.Fatalf("second daemon: %v, want AlreadyRunningError naming pid %d", err, os.Getpid())
	}
}

func TestADaemonReplacesAStaleSocketAndStopsOnAShutdownRequest(t *testing.T) {
	p := daemonHome(t)
	l := listenAt(t, p)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // a socket file nobody answers on, as kill -9 leaves it

	d := startDaemon(t, p)
	fi, err := os.Lstat(p.Socket)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v, %v; want 0600", fi.Mode(), err)
	}
	c := whenlua.Dial(p.Socket)
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(1)}}}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.PID != os.Getpid() || st.Home != p.Home || st.Socket != p.Socket || st.JobsDir != p.JobsDir || st.Started.IsZero() {
		t.Errorf("status lacks the daemon's fields: %+v, %v", st, err)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("RunDaemon after a shutdown request: %v", err)
		}
		d.done = nil
	case <-time.After(30 * time.Second):
		t.Fatal("a shutdown request did not stop the daemon")
	}
	if _, err := os.Lstat(p.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stopped daemon left its socket: %v", err)
	}
	// The lock is released: a new daemon starts and sees the value.
	startDaemon(t, p)
	c2 := whenlua.Dial(p.Socket)
	defer c2.Close()
	if v, err := c2.Get(ctx, "x"); err != nil || !v.Equal(whenlua.Int(1)) {
		t.Errorf("x after a restart = %v, %v", v, err)
	}
}

func TestADaemonDoesNotTakeASocketSomeoneAnswersOn(t *testing.T) {
	t.Parallel()
	p := daemonHome(t)
	l := listenAt(t, p)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	err := RunDaemon(context.Background(), DaemonOptions{Paths: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "answers on") {
		t.Fatalf("RunDaemon on a live socket: %v", err)
	}
	if _, err := os.Lstat(p.Socket); err != nil {
		t.Errorf("the live socket was removed: %v", err)
	}
}
