package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/examples"
)

// startTimeout bounds how long `daemon start` waits for the new daemon's
// socket to answer (it loads every job file first).
const startTimeout = time.Minute

// daemonStartCommand is `whenlua daemon start`: run the daemon detached,
// logging to the home's daemon.log, and print its pid once it answers.
func daemonStartCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "start",
		Usage: "start the daemon in the background and print its pid",
		Flags: daemonFlags(),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if err := checkDaemonFlags(c); err != nil {
				return err
			}
			return startAndPrint(c, e)
		},
	}
}

// daemonFlags are the flags `daemon run`, `start` and `restart` share,
// all passed on to the daemon: engine, retention and cluster.
func daemonFlags() []cli.Flag {
	return append(append(engineFlags(), retentionFlags()...), clusterFlags()...)
}

// checkDaemonFlags checks the flags of daemonFlags: retention, then
// engine, then cluster.
func checkDaemonFlags(c *cli.Context) error {
	if err := checkRetention(c); err != nil {
		return err
	}
	if err := checkEngineFlags(c); err != nil {
		return err
	}
	return checkClusterFlags(c)
}

// startAndPrint starts the daemon with the flags of daemonFlags that c
// sets and prints its pid.
func startAndPrint(c *cli.Context, e *env) error {
	pid, err := startDaemon(c.Context, e, append(append(retentionArgs(c), engineArgs(c)...), clusterArgs(c)...))
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, pid)
	return nil
}

// ping asks the home's daemon who it is, within a few seconds.
func (e *env) ping(ctx context.Context) (whenlua.Ping, error) {
	cl, err := e.Client()
	if err != nil {
		return whenlua.Ping{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// startDaemon runs `whenlua daemon run` with runArgs in a new session, its output appended to the log file, and waits until it
// answers on the socket. A daemon that already runs is an
// AlreadyRunningError.
func startDaemon(ctx context.Context, e *env, runArgs []string) (int, error) {
	p, err := e.Paths()
	if err != nil {
		return 0, err
	}
	ping, err := e.ping(ctx)
	if err == nil {
		return 0, &whenlua.AlreadyRunningError{PID: ping.PID, Where: p.Where()}
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, whenlua.ErrProtocol) || errors.Is(err, whenlua.ErrNotOurDaemon) {
		return 0, fmt.Errorf("check for a running daemon: %w", err)
	}
	// Any other failure (nobody listens, a dying daemon resets the
	// connection) leaves the decision to the new daemon's lock.
	if err := examples.InstallSample(p); err != nil {
		fmt.Fprintf(e.stderr, "whenlua: install sample job file: %v\n", err)
	}
	if err := p.Ensure(); err != nil {
		return 0, err
	}
	prog, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find this program to run the daemon: %w", err)
	}
	logf, err := os.OpenFile(p.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("open daemon log: %w", err)
	}
	defer logf.Close()
	offset, _ := logf.Seek(0, io.SeekEnd)

	cmd := exec.Command(prog, daemonArgs(e, runArgs)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start daemon: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline.C:
			return 0, fmt.Errorf("the daemon (pid %d) did not answer within %s; see %s", pid, startTimeout, p.LogFile)
		case <-exited:
			if ping, err := e.ping(ctx); err == nil {
				return 0, &whenlua.AlreadyRunningError{PID: ping.PID, Where: p.Where()}
			}
			return 0, fmt.Errorf("the daemon exited before it answered: %s (log: %s)", lastErrorLine(readFrom(p.LogFile, offset)), p.LogFile)
		case <-tick.C:
			ping, err := e.ping(ctx)
			if err != nil {
				continue
			}
			if ping.PID != pid {
				return 0, &whenlua.AlreadyRunningError{PID: ping.PID, Where: p.Where()}
			}
			return pid, nil
		}
	}
}

// readFrom returns what path holds from offset on (at most 64 KiB).
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(io.NewSectionReader(f, offset, 1<<40), 64<<10))
	return string(b)
}
