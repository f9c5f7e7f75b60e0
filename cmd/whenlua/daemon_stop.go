package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
)

// daemonStopCommand is `whenlua daemon stop`: a graceful stop through the
// socket (running jobs get SIGTERM, then SIGKILL after their grace period),
// waiting until the daemon's process is gone.
func daemonStopCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "stop",
		Usage: "stop the daemon gracefully and wait until it is gone",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "give up waiting after `DURATION`"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			stopped, err := stopDaemon(c.Context, e, c.Duration("timeout"))
			if err != nil {
				return err
			}
			if !stopped {
				p, _ := e.Paths()
				return fmt.Errorf("no daemon is running for %s", p.Where())
			}
			return nil
		},
	}
}

// stopDaemon asks the daemon to stop and waits until its process is gone.
// It reports false when no daemon was running.
func stopDaemon(ctx context.Context, e *env, timeout time.Duration) (bool, error) {
	ping, err := e.ping(ctx)
	if errors.Is(err, whenlua.ErrNoDaemon) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cl, err := e.Client()
	if err != nil {
		return false, err
	}
	if err := cl.Shutdown(ctx); err != nil {
		return false, fmt.Errorf("stop daemon: %w", err)
	}
	cl.Close()
	deadline := time.Now().Add(timeout)
	for !processGone(ping.PID) {
		if time.Now().After(deadline) {
			return false, fmt.Errorf("the daemon (pid %d) still runs after %s; kill it with: kill %d", ping.PID, timeout, ping.PID)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true, nil
}

// processGone reports whether pid no longer runs: gone, or a zombie
// waiting for its parent whose other threads have all exited (only then
// are its files, the lock and the socket, closed).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X') {
		return false
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return err != nil || len(tasks) <= 1
}
