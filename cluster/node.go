package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/host"
	"github.com/whenlua/whenlua/host/runner"
)

// NodeOptions configures a Node.
type NodeOptions struct {
	Endpoints []string // etcd client URLs
	Cluster   string   // the cluster's name: its keys are under /whenlua/<Cluster>/
	Node      string   // this node's name, unique among the live nodes
	// Addr is where the node-to-node endpoint listens (host:port; port 0
	// picks a free one). Other nodes connect to it: it must be an address
	// they reach.
	Addr string
	// TTL is the lease of the node's session: a node that stops renewing
	// it (dead, paused, cut off) loses its leadership and its claims this
	// long after (whole seconds, at least 1; default DefaultTTL).
	TTL time.Duration

	Paths  whenlua.Paths
	Logger *slog.Logger
	// Engine is the engine's configuration; the leader fills in Store.
	Engine host.EngineOptions
	// Store is the retention of the cluster's store (HistoryKeep,
	// HistoryMaxAge, RunsKeep...); the node fills in Client, Cluster,
	// Fence and Logger.
	Store Options
}

// DefaultTTL is the session lease of a node unless NodeOptions.TTL says otherwise.
const DefaultTTL = 5 * time.Second

// Node is one daemon of a cluster. It holds an etcd session (a lease), a
// record of itself under that lease, and a candidacy in the cluster's
// election. The leader runs the engine on the cluster's store, its commits
// fenced by its leadership; the other nodes evaluate nothing and forward
// every call to the leader through its node-to-node endpoint. Node
// implements whenlua.Service (what the daemon serves on its socket) and
// host.Backend.
type Node struct {
	opts   NodeOptions
	log    *slog.Logger
	prefix string // /whenlua/<cluster>/
	cli    *clientv3.Client
	secret string
	ln     net.Listener
	srv    *host.Server
	addr   string // the endpoint's address, as other nodes dial it
	start  time.Time
	// metrics are the node's own, for its whole life (metrics.go).
	metrics *nodeMetrics

	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	engine  *host.Engine  // set while this node leads and its engine is open
	leader  leaderInfo    // the current leader as etcd says, zero when none
	changed chan struct{} // closed and replaced when engine or leader change
	clients map[string]*whenlua.Client
	files   map[string]string // this node's job files, as last hashed

	runner   *runner.Runner // the processes of the runs this node claimed
	lmu      sync.Mutex
	local    map[uint64]*localRun
	claiming map[uint64]bool // offers this node is claiming now
	claims   sync.WaitGroup  // the goroutines claiming them
	// stopping: the node stops; lostLeases: the leases its sessions lost.
	// A run that starts after either is stopped at once.
	stopping   bool
	lostLeases map[clientv3.LeaseID]bool
}

// leaderInfo is the value a candidate puts in the election.
type leaderInfo struct {
	Node string `json:"node"`
	Addr string `json:"addr"`
}

// nodeRecord is a live node's key, under its session's lease.
type nodeRecord struct {
	Name    string            `json:"name"`
	Addr    string            `json:"addr"`
	PID     int               `json:"pid"`
	Started time.Time         `json:"started"`
	Files   map[string]string `json:"files"`
}

// NewNode returns a node; Open joins the cluster.
func NewNode(opts NodeOptions) *Node {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Cluster == "" {
		opts.Cluster = DefaultCluster
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	return &Node{
		opts:       opts,
		log:        opts.Logger.With("node", opts.Node),
		prefix:     "/whenlua/" + opts.Cluster + "/",
		changed:    make(chan struct{}),
		clients:    map[string]*whenlua.Client{},
		done:       make(chan struct{}),
		local:      map[uint64]*localRun{},
		claiming:   map[uint64]bool{},
		lostLeases: map[clientv3.LeaseID]bool{},
		metrics:    newNodeMetrics(),
	}
}

// key returns the key of a cluster's membership: under c/ beside the
// store's keys (c/secret, c/nodes/<node>, c/election/<lease>).
func (n *Node) key(parts ...string) string { return n.prefix + "c/" + strings.Join(parts, "/") }

// Open connects to etcd, reads or creates the cluster's secret, starts the
// node-to-node endpoint, registers the node and starts its campaign. It
// returns once the node is registered; the node may not lead yet.
func (n *Node) Open(ctx context.Context) error {
	if err := ValidateClusterName(n.opts.Cluster); err != nil {
		return err
	}
	if err := whenlua.ValidateNodeName(n.opts.Node); err != nil {
		return err
	}
	if n.opts.TTL < time.Second || n.opts.TTL%time.Second != 0 {
		return fmt.Errorf("%w: lease TTL %v: want whole seconds, at least 1s", whenlua.ErrInvalid, n.opts.TTL)
	}
	n.start = time.Now().UTC()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   n.opts.Endpoints,
		DialTimeout: 5 * time.Second,
		Context:     context.WithoutCancel(ctx),
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return fmt.Errorf("connect to etcd %s: %w", strings.Join(n.opts.Endpoints, ","), err)
	}
	n.cli = cli
	ok := false
	defer func() {
		if !ok {
			n.closeConns()
		}
	}()
	if err := n.loadSecret(ctx); err != nil {
		return err
	}
	if err := n.listen(); err != nil {
		return err
	}
	n.files = hashJobFiles(n.opts.Paths.JobsDir)
	if err := os.MkdirAll(n.opts.Paths.RunsDir, 0o700); err != nil {
		return fmt.Errorf("create runs directory: %w", err)
	}
	n.runner = runner.New(runner.Options{BaseDir: n.opts.Paths.RunsDir, Grace: n.opts.Engine.Grace, Logger: n.log})
	n.stopLeftovers()
	sess, err := n.register(ctx, true)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	go n.observe(lctx)
	go n.run(lctx, sess)
	ok = true
	n.log.Info("joined the cluster", "cluster", n.opts.Cluster, "endpoints", strings.Join(n.opts.Endpoints, ","), "addr", n.addr, "ttl", n.opts.TTL)
	return nil
}

// Close leaves the cluster: the engine (if this node leads) stops, its
// runs recorded while the node still leads; then the session is revoked,
// which ends the leadership and removes the node's record at once.
func (n *Node) Close(ctx context.Context) error {
	if n.cancel != nil {
		n.cancel()
		select {
		case <-n.done:
		case <-ctx.Done():
			n.closeConns()
			return ctx.Err()
		}
	}
	n.closeConns()
	return nil
}

func (n *Node) closeConns() {
	if n.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = n.srv.Close(ctx)
		cancel()
	}
	if n.ln != nil {
		n.ln.Close()
	}
	n.mu.Lock()
	for _, c := range n.clients {
		c.Close()
	}
	n.clients = map[string]*whenlua.Client{}
	n.mu.Unlock()
	if n.cli != nil {
		n.cli.Close()
	}
}

// loadSecret reads the cluster's secret, creating it if no node did yet
// (a Create-if-absent transaction: the first node's secret wins).
func (n *Node) loadSecret(ctx context.Context) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	k := n.key("secret")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, hex.EncodeToString(b))).
		Else(clientv3.OpGet(k)).Commit()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("etcd at %s did not answer within 10s (is it running, and are these its client URLs?)", strings.Join(n.opts.Endpoints, ","))
	}
	if err != nil {
		return fmt.Errorf("read the cluster secret from etcd %s: %w", strings.Join(n.opts.Endpoints, ","), err)
	}
	if resp.Succeeded {
		n.secret = hex.EncodeToString(b)
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return errors.New("read the cluster secret: it vanished")
	}
	n.secret = string(kvs[0].Value)
	return nil
}

// listen starts the node-to-node endpoint: the socket protocol over TCP,
// for whoever presents the cluster's secret as a bearer token.
func (n *Node) listen() error {
	ln, err := net.Listen("tcp", n.opts.Addr)
	if err != nil {
		return fmt.Errorf("node-to-node endpoint: %w", err)
	}
	n.ln = ln
	n.addr = advertised(ln.Addr().(*net.TCPAddr))
	n.srv = host.NewServer(endpoint{n}, host.ServerOptions{
		Logger:    n.log.With("part", "endpoint"),
		Authorize: n.authorize,
	})
	go func() {
		if err := n.srv.Serve(ln); err != nil {
			n.log.Error("node-to-node endpoint stopped", "err", err)
		}
	}()
	return nil
}

// advertised is the address other nodes dial: the listening one, with the
// host's name in place of an unspecified IP.
func advertised(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, fmt.Sprint(a.Port))
		}
	}
	return a.String()
}

func (n *Node) authorize(r *http.Request) error {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(n.secret)) != 1 {
		return errors.New("not a node of this cluster (wrong or missing token)")
	}
	return nil
}

// register opens a session and writes the node's record under its lease.
// A live node of the same name keeps its record: at the first start the
// node waits two TTLs for it to go (a node restarted after kill -9), then
// fails.
func (n *Node) register(ctx context.Context, first bool) (*concurrency.Session, error) {
	// The session outlives ctx: run closes it, and its Close revokes the
	// lease (the record and the candidacy go at once) under its context.
	sess, err := concurrency.NewSession(n.cli, concurrency.WithTTL(int(n.opts.TTL/time.Second)),
		concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("open an etcd session: %w", err)
	}
	deadline := time.Now().Add(2*n.opts.TTL + time.Second)
	for {
		ok, holder, err := n.putRecord(ctx, sess)
		if err == nil && ok {
			return sess, nil
		}
		if err == nil && first && time.Now().After(deadline) {
			err = fmt.Errorf("%w: a node named %s is already live in cluster %s (pid %d, %s): give this one another --node", whenlua.ErrConflict, n.opts.Node, n.opts.Cluster, holder.PID, holder.Addr)
		}
		if err != nil && (first || ctx.Err() != nil) {
			sess.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			sess.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stopLeftovers stops what is left of the runs of this node's earlier
// life (it died with runs in flight, which the leader recorded lost when
// its lease expired), and removes their directories: nothing of this node
// runs yet.
func (n *Node) stopLeftovers() {
	entries, _ := os.ReadDir(n.opts.Paths.RunsDir)
	for _, de := range entries {
		if k := n.runner.StopStray(filepath.Join(n.opts.Paths.RunsDir, de.Name()), 0); k > 0 {
			n.log.Warn("stopped the processes of a run of this node's earlier life", "dir", de.Name(), "processes", k)
		}
	}
	host.RemoveLeftoverRuns(n.opts.Paths.RunsDir, n.log.Warn)
}

// putRecord writes the node's record if no live node has its name; it
// returns the record that holds the name otherwise.
func (n *Node) putRecord(ctx context.Context, sess *concurrency.Session) (bool, nodeRecord, error) {
	k := n.key("nodes", n.opts.Node)
	val, err := json.Marshal(n.record())
	if err != nil {
		return false, nodeRecord{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(val), clientv3.WithLease(sess.Lease()))).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return false, nodeRecord{}, fmt.Errorf("register node: %w", err)
	}
	if resp.Succeeded {
		return true, nodeRecord{}, nil
	}
	var holder nodeRecord
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		_ = json.Unmarshal(kvs[0].Value, &holder)
	}
	return false, holder, nil
}

func (n *Node) record() nodeRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	return nodeRecord{Name: n.opts.Node, Addr: n.addr, PID: os.Getpid(), Started: n.start, Files: n.files}
}

// refreshFiles hashes the job files again and, when they changed, rewrites
// the node's record (under the same lease).
func (n *Node) refreshFiles(ctx context.Context, sess *concurrency.Session) {
	files := hashJobFiles(n.opts.Paths.JobsDir)
	n.mu.Lock()
	same := equalFiles(files, n.files)
	n.files = files
	n.mu.Unlock()
	if same {
		return
	}
	val, err := json.Marshal(n.record())
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.cli.Put(ctx, n.key("nodes", n.opts.Node), string(val), clientv3.WithLease(sess.Lease())); err != nil {
		n.log.Warn("update node record", "err", err)
	}
}

// hashJobFiles returns the content hash of each job file and lib module
// in dir ("name.lua", "lib/name.lua"), as the loader hashes them.
func hashJobFiles(dir string) map[string]string {
	out := map[string]string{}
	add := func(sub string) {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, de := range entries {
			if !de.Type().IsRegular() || !whenlua.IsJobFile(de.Name()) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, sub, de.Name()))
			if err != nil {
				continue
			}
			sum := sha256.Sum256(b)
			out[filepath.ToSlash(filepath.Join(sub, de.Name()))] = hex.EncodeToString(sum[:8])
		}
	}
	add("")
	add("lib")
	return out
}

func equalFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// notify wakes whoever waits for a change of leader or engine; n.mu held.
func (n *Node) notify() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// observe follows the election: the leader is the candidate whose key was
// created first (concurrency.Election's rule). It reads the election at
// start and after each change of its keys.
func (n *Node) observe(ctx context.Context) {
	pfx := n.key("election") + "/"
	for ctx.Err() == nil {
		resp, err := n.cli.Get(ctx, pfx, clientv3.WithFirstCreate()...)
		if err != nil {
			n.log.Warn("read the election", "err", err)
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		var li leaderInfo
		if len(resp.Kvs) > 0 {
			_ = json.Unmarshal(resp.Kvs[0].Value, &li)
		}
		n.mu.Lock()
		if li != n.leader {
			n.leader = li
			n.notify()
			if li.Node != "" {
				n.log.Info("leader", "leader", li.Node, "addr", li.Addr)
			}
		}
		n.mu.Unlock()
		wctx, cancel := context.WithCancel(ctx)
		wch := n.cli.Watch(clientv3.WithRequireLeader(wctx), pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil || len(wr.Events) > 0 {
				break
			}
		}
		cancel()
	}
}

// Sorted names of m's keys.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
