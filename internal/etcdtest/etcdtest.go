// Package etcdtest starts a real etcd for tests: one embedded etcd server
// (go.etcd.io/etcd/server/v3/embed) per member, on free loopback ports,
// with its data in a temporary directory and its logs dropped. A member can
// be stopped, killed and restarted, for the tests of what a cluster does
// when one of its members dies.
//
// Only test files and cmd/whenlua-bench (through Launch) may import this
// package: it links the etcd server, which the whenlua binary must not carry.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// readyTimeout bounds how long a member may take to join its cluster and
// serve: etcd is ready in about a second, much later on a loaded machine.
const readyTimeout = 60 * time.Second

// Options configure a cluster.
type Options struct {
	// Members is the number of etcd members (0: 1).
	Members int
	// Dir holds the members' data directories (required by Launch; Start
	// uses t.TempDir()).
	Dir string
	// Configure, when set, adjusts each member's configuration before it
	// starts (limits such as MaxTxnOps, MaxRequestBytes, QuotaBackendBytes).
	Configure func(*embed.Config)
}

// Cluster is a running etcd cluster of embedded members.
type Cluster struct {
	opts    Options
	members []*Member
}

// Member is one etcd member of a Cluster.
type Member struct {
	name      string
	dir       string
	clientURL url.URL
	peerURL   url.URL
	initial   string // the initial cluster, name=peer URL, comma separated
	opts      *Options

	mu   sync.Mutex
	etcd *embed.Etcd // nil while stopped
}

// Start starts an etcd cluster of members members (at least 1) for t and
// stops it when t ends; a cluster that does not start fails t.
func Start(t testing.TB, members int) *Cluster {
	t.Helper()
	return StartOptions(t, Options{Members: members})
}

// StartOptions is Start with options; opts.Dir defaults to t.TempDir().
func StartOptions(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c, err := Launch(opts)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Launch starts a cluster without a testing.TB, for a TestMain or the
// bench; the caller must Close it.
func Launch(opts Options) (*Cluster, error) {
	if opts.Members <= 0 {
		opts.Members = 1
	}
	if opts.Dir == "" {
		return nil, errors.New("etcdtest: no directory")
	}
	c := &Cluster{opts: opts}
	var lastErr error
	// A port picked free may be taken by another process before etcd binds
	// it: then the whole cluster starts again on other ports.
	for range 5 {
		if err := c.create(); err != nil {
			return nil, err
		}
		lastErr = c.startAll()
		if lastErr == nil {
			return c, nil
		}
		c.Close()
		if !isAddrInUse(lastErr) {
			break
		}
		for _, m := range c.members {
			os.RemoveAll(m.dir)
		}
	}
	return nil, lastErr
}

// create picks the members' names, directories and ports.
func (c *Cluster) create() error {
	ports, err := freePorts(2 * c.opts.Members)
	if err != nil {
		return err
	}
	c.members = make([]*Member, c.opts.Members)
	var initial []string
	for i := range c.members {
		m := &Member{
			name:      fmt.Sprintf("m%d", i),
			clientURL: url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])},
			peerURL:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])},
			opts:      &c.opts,
		}
		m.dir = filepath.Join(c.opts.Dir, m.name)
		initial = append(initial, m.name+"="+m.peerURL.String())
		c.members[i] = m
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
	}
	return nil
}

// startAll starts every member and waits until each serves: a member of a
// cluster of several is ready only once a quorum has started.
func (c *Cluster) startAll() error {
	for _, m := range c.members {
		if err := m.launch(); err != nil {
			return fmt.Errorf("member %s: %w", m.name, err)
		}
	}
	for _, m := range c.members {
		if err := m.waitReady(); err != nil {
			return fmt.Errorf("member %s: %w", m.name, err)
		}
	}
	return nil
}

// Endpoints returns the client URLs of every member, running or not.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.Endpoint())
	}
	return eps
}

// Members returns the cluster's members.
func (c *Cluster) Members() []*Member { return c.members }

// Member returns member i, from 0.
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Leader returns the member that is raft leader now, or nil when no
// running member knows one.
func (c *Cluster) Leader() *Member {
	for _, m := range c.members {
		e := m.server()
		if e == nil {
			continue
		}
		if lead := e.Server.Leader(); lead != 0 {
			for _, o := range c.members {
				if oe := o.server(); oe != nil && oe.Server.MemberID() == lead {
					return o
				}
			}
		}
	}
	return nil
}

// Close stops every running member.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Stop()
		}()
	}
	wg.Wait()
}

// Name is the member's etcd name.
func (m *Member) Name() string { return m.name }

// Endpoint is the member's client URL.
func (m *Member) Endpoint() string { return m.clientURL.String() }

// Running reports whether the member is started.
func (m *Member) Running() bool { return m.server() != nil }

// Server returns the member's embedded etcd, nil while it is stopped.
func (m *Member) Server() *embed.Etcd { return m.server() }

func (m *Member) server() *embed.Etcd {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.etcd
}

// Stop stops the member gracefully (a leader hands its leadership over
// first); a stopped member is left alone.
func (m *Member) Stop() {
	m.mu.Lock()
	e := m.etcd
	m.etcd = nil
	m.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Kill stops the member's raft node at once, as a crash does: no
// leadership transfer, nothing more replicated; then it releases the
// member's ports and files so that Restart can start it again.
func (m *Member) Kill() {
	m.mu.Lock()
	e := m.etcd
	m.etcd = nil
	m.mu.Unlock()
	if e != nil {
		e.Server.HardStop()
		e.Close()
	}
}

// Restart starts a stopped member again from its data directory and
// waits until it serves.
func (m *Member) Restart() error {
	if m.Running() {
		return fmt.Errorf("member %s is running", m.name)
	}
	if err := m.launch(); err != nil {
		return err
	}
	return m.waitReady()
}

// launch starts the member's etcd without waiting for it to serve.
func (m *Member) launch() error {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.InitialCluster = m.initial
	cfg.InitialClusterToken = "whenlua-test"
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// No metrics or pprof listener: nothing but the two ports above.
	cfg.ListenMetricsUrls = nil
	if m.opts.Configure != nil {
		m.opts.Configure(cfg)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.etcd = e
	m.mu.Unlock()
	return nil
}

// waitReady waits until the member serves clients, or it failed.
func (m *Member) waitReady() error {
	e := m.server()
	if e == nil {
		return fmt.Errorf("member %s is stopped", m.name)
	}
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		m.Stop()
		return err
	case <-time.After(readyTimeout):
		m.Stop()
		return fmt.Errorf("member %s not ready after %v", m.name, readyTimeout)
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}
