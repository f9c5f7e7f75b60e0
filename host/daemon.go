package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/persist"
)

// DaemonOptions configures RunDaemon.
type DaemonOptions struct {
	Paths  whenlua.Paths
	Logger *slog.Logger // nil: slog.Default()

	// Engine tunes the engine; RunDaemon fills Store, Paths and Logger.
	Engine EngineOptions
	// Store tunes the store; RunDaemon fills Dir and Logger.
	Store persist.Options
	// StopTimeout bounds the graceful stop: requests in flight, running
	// jobs' SIGTERM and SIGKILL, closing the store (default 1 minute).
	StopTimeout time.Duration
	// Ready, when set, is called once the daemon serves its socket.
	Ready func(whenlua.Ping)
	// MetricsAddr, when set, is the TCP address (host:port; port 0 picks
	// a free one) on which the daemon serves Prometheus metrics at
	// /metrics. The address bound is logged and shown by status. A
	// Backend serves them only if it has a MetricsGatherer; the daemon
	// adds the process's go_* and process_* metrics.
	MetricsAddr string
	// Backend, when set, replaces the home's own store and engine: the
	// daemon serves the Service it returns on the socket and closes it on
	// stop (a node of a cluster, package cluster). Store is then unused.
	Backend func(ctx context.Context, env BackendEnv) (Backend, error)
}

// BackendEnv is what RunDaemon hands DaemonOptions.Backend: the home's
// paths, the logger and the engine options, with Paths and Logger filled.
type BackendEnv struct {
	Paths  whenlua.Paths
	Logger *slog.Logger
	Engine EngineOptions
}

// Backend is what a daemon serves: a Service that RunDaemon closes, after
// its socket, when it stops.
type Backend interface {
	whenlua.Service
	Close(ctx context.Context) error
}

// metricsBackend is a Backend that serves metrics: it gathers them for
// one scrape, under the scrape's context.
type metricsBackend interface {
	MetricsGatherer(ctx context.Context) prometheus.Gatherer
}

// localBackend is the default Backend: the engine on the home's own store.
type localBackend struct {
	*Engine
	store whenlua.Store
}

func (b localBackend) Close(ctx context.Context) error {
	err := b.Engine.Close(ctx)
	if err != nil {
		err = fmt.Errorf("close engine: %w", err)
	}
	if cerr := b.store.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	return err
}

// openLocal opens the home's badger store and the engine on it.
func openLocal(ctx context.Context, opts DaemonOptions, env BackendEnv) (Backend, error) {
	so := opts.Store
	so.Dir = env.Paths.DBDir
	if so.Logger == nil {
		so.Logger = env.Logger.With("part", "store")
	}
	store, err := persist.Open(so)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	eo := env.Engine
	eo.Store = store
	engine := NewEngine(eo)
	if err := engine.Open(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("open engine: %w", err)
	}
	return localBackend{Engine: engine, store: store}, nil
}

// AlreadyRunningError is RunDaemon's error when another daemon holds the
// home's lock.
type AlreadyRunningError = whenlua.AlreadyRunningError

// RunDaemon runs the daemon of one home until ctx is done, SIGTERM or
// SIGINT arrives, or a client asks for /v1/shutdown; SIGHUP rescans the
// jobs directory. It holds the home's lock (flock on LockFile, released by
// the kernel even after kill -9), serves the socket (0600; a stale socket
// nobody answers on is replaced), and on stop closes the server, then the
// engine (which stops running jobs), then the store.
func RunDaemon(ctx context.Context, opts DaemonOptions) (err error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = time.Minute
	}
	p := opts.Paths
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()
	// SIGHUP is caught from the start: its default action would end the
	// daemon, and one sent while the daemon opens is a rescan once it runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	reserveThreads(threadReserve)
	if err := p.Ensure(); err != nil {
		return err
	}
	lock, err := lockHome(p)
	if err != nil {
		return err
	}
	defer lock.Close()

	l, err := listenSocket(p.Socket)
	if err != nil {
		return err
	}
	defer l.Close()

	// The metrics address is taken before anything is opened, so that a
	// bad or busy one fails the start at once.
	var ml net.Listener
	if opts.MetricsAddr != "" {
		if ml, err = net.Listen("tcp", opts.MetricsAddr); err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		defer ml.Close()
	}

	env := BackendEnv{Paths: p, Logger: log, Engine: opts.Engine}
	env.Engine.Paths, env.Engine.Logger = p, log
	var engine Backend
	if opts.Backend != nil {
		engine, err = opts.Backend(ctx, env)
	} else {
		engine, err = openLocal(ctx, opts, env)
	}
	if err != nil {
		return err
	}
	mb, hasMetrics := engine.(metricsBackend)
	if ml != nil && !hasMetrics {
		cctx, cancel := context.WithTimeout(context.Background(), opts.StopTimeout)
		defer cancel()
		return errors.Join(errors.New("--metrics: this daemon serves no metrics"), engine.Close(cctx))
	}
	// From here on, the stop sequence below closes the engine.

	ping := whenlua.Ping{
		PID:      os.Getpid(),
		Version:  whenlua.BuildVersion,
		Protocol: whenlua.ProtocolVersion,
		Started:  time.Now().UTC(),
		Home:     p.Where(),
		Socket:   p.Socket,
	}
	shutdown := make(chan struct{})
	ds := daemonService{Service: engine, ping: ping, paths: p}
	var msrv *http.Server
	if ml != nil {
		ds.metrics = ml.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metricsHandler(mb, log))
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() {
			if err := msrv.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("serve metrics", "err", err)
			}
		}()
		log.Info("metrics served", "addr", ds.metrics, "path", "/metrics")
	}
	srv := NewServer(ds, ServerOptions{
		Logger:   log,
		Ping:     func() whenlua.Ping { return ping },
		Shutdown: func() { close(shutdown) },
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	log.Info("daemon started", "pid", ping.PID, "home", p.Where(), "socket", p.Socket, "version", ping.Version)
	if opts.Ready != nil {
		opts.Ready(ping)
	}

	var serveErr error
	reason := ""
	for reason == "" {
		select {
		case <-ctx.Done():
			reason = "signal or context"
		case <-shutdown:
			reason = "shutdown request"
		case serveErr = <-served:
			reason = "server stopped"
		case <-hup:
			st, err := engine.Reload(ctx, whenlua.ReloadRequest{})
			if err != nil {
				log.Warn("reload on SIGHUP", "err", err)
				break
			}
			failed := 0
			for _, f := range st.Files {
				if f.Error != "" {
					failed++
				}
			}
			log.Info("jobs directory rescanned on SIGHUP", "files", len(st.Files), "failed", failed)
		}
	}
	log.Info("daemon stopping", "reason", reason)

	sctx, cancel := context.WithTimeout(context.Background(), opts.StopTimeout)
	defer cancel()
	if cerr := srv.Close(sctx); cerr != nil {
		log.Warn("close server", "err", cerr)
	}
	if msrv != nil {
		if cerr := msrv.Shutdown(sctx); cerr != nil {
			log.Warn("close metrics server", "err", cerr)
		}
	}
	if serveErr == nil {
		serveErr = <-served
	}
	if cerr := engine.Close(sctx); cerr != nil {
		log.Warn("close", "err", cerr)
		err = errors.Join(err, cerr)
	}
	if serveErr != nil {
		err = errors.Join(err, fmt.Errorf("serve: %w", serveErr))
	}
	log.Info("daemon stopped", "pid", ping.PID)
	return err
}

// daemonService fills in the daemon's own fields of Status.
type daemonService struct {
	whenlua.Service
	ping    whenlua.Ping
	paths   whenlua.Paths
	metrics string // the metrics address bound, "" when none
}

func (d daemonService) fill(st whenlua.Status) whenlua.Status {
	st.PID, st.Version, st.Started = d.ping.PID, d.ping.Version, d.ping.Started
	st.Home, st.Socket = d.paths.Where(), d.paths.Socket // the engine sets the directories
	st.Metrics = d.metrics
	return st
}

func (d daemonService) Status(ctx context.Context) (whenlua.Status, error) {
	st, err := d.Service.Status(ctx)
	return d.fill(st), err
}

// ScanHistory implements whenlua.HistoryScanner for /v1/histories.
func (d daemonService) ScanHistory(ctx context.Context, fn func(whenlua.VarVersion) error) error {
	hs, ok := d.Service.(whenlua.HistoryScanner)
	if !ok {
		return errors.New("this daemon cannot list every variable's history")
	}
	return hs.ScanHistory(ctx, fn)
}

func (d daemonService) Reload(ctx context.Context, req whenlua.ReloadRequest) (whenlua.Status, error) {
	st, err := d.Service.Reload(ctx, req)
	return d.fill(st), err
}

// lockHome takes the home's lock: an exclusive flock on LockFile, which
// then holds this process's pid. The kernel drops the lock when the process
// dies, however it dies, so a stale lock file never blocks a start.
func lockHome(p whenlua.Paths) (*os.File, error) {
	f, err := os.OpenFile(p.LockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &AlreadyRunningError{PID: lockHolder(f), Where: p.Where()}
		}
		return nil, fmt.Errorf("lock %s: %w", p.LockFile, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock: %w", err)
	}
	return f, nil
}

// lockHolder reads the pid the lock's holder wrote, waiting briefly for a
// daemon that has just taken the lock to write it.
func lockHolder(f *os.File) int {
	for range 20 {
		b, _ := io.ReadAll(io.NewSectionReader(f, 0, 64))
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return pid
		}
		time.Sleep(25 * time.Millisecond)
	}
	return 0
}

// listenSocket listens on path, mode 0600. An existing socket is removed
// only when nobody answers on it (left by a daemon that was killed).
func listenSocket(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket: remove it", path)
		}
		// A daemon killed a moment ago may still hold the socket while its
		// threads exit: give it a little time before calling it alive.
		for tries := 0; ; tries++ {
			c, err := net.DialTimeout("unix", path, time.Second)
			if err == nil {
				c.Close()
				if tries < 40 {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				return nil, fmt.Errorf("another process answers on %s: is a daemon of another home using this socket?", path)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return nil, fmt.Errorf("check stale socket %s: %w", path, err)
			}
			break
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// threadReserve is how many OS threads the daemon creates at start and
// keeps for the Go runtime.
const threadReserve = 16

// reserveThreads makes the Go runtime create n OS threads now, which it
// then keeps idle and reuses. The runtime aborts the process when it cannot
// create a thread it needs (a system call that blocks, the collector);
// jobs that use up a limit on tasks (RLIMIT_NPROC, a pids cgroup) would
// otherwise leave the daemon none. Each goroutine locked to its thread
// holds that thread until all are locked; unlocked, the threads go back to
// the runtime's idle list.
func reserveThreads(n int) {
	var locked, done sync.WaitGroup
	release := make(chan struct{})
	locked.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			locked.Done()
			<-release
			runtime.UnlockOSThread()
		}()
	}
	locked.Wait()
	close(release)
	done.Wait()
}
