package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/whenlua/whenlua"
)

// bench owns the temporary directory, the whenlua binary and the daemons
// started in it. It is used by one goroutine (run's).
type bench struct {
	root    string // temporary directory holding the homes (and a built binary)
	bin     string
	daemons []*daemon // started and not yet stopped
	etcd    string    // -etcd: the endpoints the cluster rows use, or "" for their own
}

// daemon is one running `whenlua daemon run`, started by `whenlua daemon
// start` in its own home.
type daemon struct {
	p   whenlua.Paths
	pid int
	c   *whenlua.Client
}

// newBench creates the temporary directory and builds the whenlua binary
// when bin is empty.
func newBench(ctx context.Context, bin, dir string) (*bench, error) {
	root, err := os.MkdirTemp(dir, "whenlua-bench-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	b := &bench{root: root, bin: bin}
	if bin == "" {
		b.bin = filepath.Join(root, "whenlua")
		b.logf("building whenlua")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", root, "github.com/whenlua/whenlua/cmd/whenlua")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			os.RemoveAll(root)
			return nil, fmt.Errorf("build whenlua (run inside the module, or give -bin): %w", err)
		}
	} else if b.bin, err = filepath.Abs(bin); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	return b, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "whenlua-bench: "+format+"\n", args...)
}

// home creates a fresh home named name, with an empty jobs directory (so no
// sample job file is installed), and returns its paths.
func (b *bench) home(name string) (whenlua.Paths, error) {
	p, err := whenlua.ResolvePaths(filepath.Join(b.root, name))
	if err != nil {
		return whenlua.Paths{}, err
	}
	if err := os.MkdirAll(p.JobsDir, 0o700); err != nil {
		return whenlua.Paths{}, err
	}
	return p, nil
}

// env is the environment of whenlua commands for home p. The daemon runs
// job scripts with $SHELL, so it is /bin/sh, like the baselines.
func (b *bench) env(p whenlua.Paths) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, whenlua.EnvHome+"=") && !strings.HasPrefix(kv, "SHELL=") {
			env = append(env, kv)
		}
	}
	return append(env, whenlua.EnvHome+"="+p.Home, "SHELL=/bin/sh")
}

// start runs `whenlua daemon start` with flags for home p (it returns once
// the daemon has loaded the job files and answers) and returns the daemon.
func (b *bench) start(ctx context.Context, p whenlua.Paths, flags ...string) (*daemon, error) {
	cmd := exec.CommandContext(ctx, b.bin, append([]string{"daemon", "start"}, flags...)...)
	cmd.Env = b.env(p)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// A daemon that started but did not answer in time must not outlive the bench.
		stop := exec.Command(b.bin, "daemon", "stop", "--timeout", "30s")
		stop.Env = b.env(p)
		_ = stop.Run()
		return nil, fmt.Errorf("whenlua daemon start: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return nil, fmt.Errorf("whenlua daemon start printed %q, not a pid", out)
	}
	d := &daemon{p: p, pid: pid, c: whenlua.Dial(p.Socket)}
	b.daemons = append(b.daemons, d)
	return d, nil
}

// forget drops a daemon that is gone (killed) from those stopAll stops.
func (b *bench) forget(d *daemon) {
	d.c.Close()
	b.daemons = slices.DeleteFunc(b.daemons, func(o *daemon) bool { return o == d })
}

// stopAll stops every daemon started and not yet stopped.
func (b *bench) stopAll() error {
	var first error
	for _, d := range b.daemons {
		if err := b.stop(d); err != nil && first == nil {
			first = err
		}
	}
	b.daemons = nil
	return first
}

// stop runs `whenlua daemon stop`; a daemon that does not stop within a
// minute is killed.
func (b *bench) stop(d *daemon) error {
	d.c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, "daemon", "stop")
	cmd.Env = b.env(d.p)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	kerr := syscall.Kill(d.pid, syscall.SIGKILL)
	if errors.Is(kerr, syscall.ESRCH) {
		return nil
	}
	return fmt.Errorf("whenlua daemon stop (pid %d, killed): %w: %s", d.pid, err, strings.TrimSpace(string(out)))
}

// close stops the daemons and removes the temporary directory.
func (b *bench) close() error {
	err := b.stopAll()
	if rerr := os.RemoveAll(b.root); err == nil && rerr != nil {
		err = rerr
	}
	return err
}

// writeJob writes a job file atomically (a hidden temporary file renamed
// into place, as editors do), so the watcher never sees half a file.
func writeJob(p whenlua.Paths, name, src string) error {
	tmp := filepath.Join(p.JobsDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(src), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(p.JobsDir, name))
}

// startLoaded starts the daemon of home p and waits until its job files
// hold jobs jobs in all, as waitLoaded does.
func (b *bench) startLoaded(ctx context.Context, p whenlua.Paths, jobs int, timeout time.Duration) (*daemon, error) {
	d, err := b.start(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := waitLoaded(ctx, d, jobs, timeout); err != nil {
		return nil, err
	}
	return d, nil
}

// waitLoaded waits until the daemon's job files hold jobs jobs in all and
// none has a load error.
func waitLoaded(ctx context.Context, d *daemon, jobs int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := d.c.Status(ctx)
		if err != nil {
			return err
		}
		n := 0
		for _, f := range st.Files {
			if f.Error != "" {
				return fmt.Errorf("job file %s: %s", f.Path, f.Error)
			}
			n += f.Jobs
		}
		if n == jobs {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d jobs loaded after %s, want %d", n, timeout, jobs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitIdle waits until the daemon runs no job.
func waitIdle(ctx context.Context, d *daemon) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		jobs, err := d.c.Jobs(ctx)
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d runs still running after 30s", len(jobs))
		}
		time.Sleep(200 * time.Microsecond)
	}
}
