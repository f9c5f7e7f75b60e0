package whenlua

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/whenlua/whenlua/internal/peercred"
)

// BuildVersion is the version of whenlua, reported by the daemon's ping and
// status. Release builds set it with -ldflags "-X github.com/whenlua/whenlua.BuildVersion=...".
var BuildVersion = "dev"

// The socket protocol (version ProtocolVersion) is HTTP/1.1 with JSON bodies
// on the daemon's unix socket. Reads are GETs with query parameters, changes
// are POSTs with a JSON body:
//
//	POST /v1/set      SetRequest            -> SetResponse
//	GET  /v1/get      ?name=N               -> Value
//	GET  /v1/vars                           -> map[string]Value
//	GET  /v1/history  ?name=N&n=K           -> []Version
//	GET  /v1/histories                      -> every variable's versions, one VarVersion (JSON) a line, streamed; an error after the first byte is in the Whenlua-Error trailer
//	GET  /v1/names                          -> []JobInfo
//	GET  /v1/jobs                           -> []Run
//	POST /v1/start    StartRequest          -> Run
//	POST /v1/cancel   CancelRequest         -> {}
//	GET  /v1/tail     ?serial=S             -> the output, streamed; an error after the first byte is in the Whenlua-Error trailer
//	GET  /v1/log      ?job=J&n=K            -> []Run
//	GET  /v1/run      ?serial=S             -> Run
//	GET  /v1/status                         -> Status
//	POST /v1/reload                         -> Status
//	GET  /v1/ping                           -> Ping
//	POST /v1/shutdown                       -> {}
//
// Every request and reply carries the header ProtocolHeader. An error reply
// has a non-2xx status and an ErrorBody.
const (
	ProtocolHeader   = "Whenlua-Protocol"
	TailErrorTrailer = "Whenlua-Error"
	TailKindTrailer  = "Whenlua-Error-Kind"
)

// Error kinds sent in ErrorBody.Kind. The client turns the first three back
// into errors wrapping ErrInvalid, ErrNotFound and ErrConflict.
const (
	KindInvalid   = "invalid"
	KindNotFound  = "not_found"
	KindConflict  = "conflict"
	KindForbidden = "forbidden"
	KindProtocol  = "protocol"
	KindNotLeader = "not_leader"
	KindInternal  = "internal"
)

// ErrProtocol marks a client and a daemon that speak different protocol
// versions.
var ErrProtocol = errors.New("protocol version mismatch")

// ErrorBody is the JSON body of an error reply.
type ErrorBody struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

// StartRequest is the body of /v1/start.
type StartRequest struct {
	Name string `json:"name"`
}

// CancelRequest is the body of /v1/cancel.
type CancelRequest struct {
	Serial uint64 `json:"serial"`
}

// Ping is the daemon's answer to /v1/ping.
type Ping struct {
	PID      int       `json:"pid"`
	Version  string    `json:"version"`
	Protocol int       `json:"protocol"`
	Started  time.Time `json:"started"`
	Home     string    `json:"home"`
	Socket   string    `json:"socket"`
}

// ErrorKind classifies err for an ErrorBody.
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, ErrInvalid):
		return KindInvalid
	case errors.Is(err, ErrNotFound):
		return KindNotFound
	case errors.Is(err, ErrConflict):
		return KindConflict
	case errors.Is(err, fs.ErrPermission):
		return KindForbidden
	case errors.Is(err, ErrProtocol):
		return KindProtocol
	case errors.Is(err, ErrNotLeader):
		return KindNotLeader
	}
	return KindInternal
}

// remoteError is an error reported by the daemon. It unwraps to the
// sentinel of its kind, so errors.Is works across the socket.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// IsRemote tells whether err is an answer of the daemon (or node), rather
// than a failure to reach it or to read its answer.
func IsRemote(err error) bool {
	var re *remoteError
	return errors.As(err, &re)
}

// RemoteError rebuilds an error from a reply's kind and message.
func RemoteError(kind, msg string) error {
	var sentinel error
	switch kind {
	case KindInvalid:
		sentinel = ErrInvalid
	case KindNotFound:
		sentinel = ErrNotFound
	case KindConflict:
		sentinel = ErrConflict
	case KindForbidden:
		sentinel = fs.ErrPermission
	case KindProtocol:
		sentinel = ErrProtocol
	case KindNotLeader:
		sentinel = ErrNotLeader
	}
	if msg == "" {
		msg = "daemon error"
	}
	return &remoteError{msg: msg, kind: sentinel}
}

// Client speaks to a daemon over its unix socket. It implements Service, so
// the CLI and the tests use the daemon as they would use the engine. It is
// safe for concurrent use.
//
// It talks only to a daemon of its own user: before a connection carries
// anything, the socket file must be a socket owned by this uid (not a
// symbolic link, not another user's file in a shared directory) and the
// process listening on it must run as this uid.
type Client struct {
	socket string
	hc     *http.Client
	token  string // sent as a bearer token (DialNode)
	tcp    bool   // socket is a TCP address (DialNode)
}

var _ Service = (*Client)(nil)

// ErrNotOurDaemon marks a socket that another user owns or listens on.
var ErrNotOurDaemon = errors.New("not your daemon")

// refusal is a refused socket: its message says why, and it unwraps to
// ErrNotOurDaemon.
type refusal struct{ msg string }

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return ErrNotOurDaemon }

func refuse(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

// fileOwner returns the uid that owns fi's file.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// Dial returns a client of the daemon listening on socket. It does not
// connect: each call does, and a call that finds nobody listening returns an
// error wrapping ErrNoDaemon.
//
// The transport is net/http's: connections are kept for reuse, and a
// request is sent again on a new connection only where net/http judges it
// safe, that is when nothing of it was written, or when it is a read (GET)
// whose reused connection broke. A change (POST) the daemon may have
// received is never sent twice.
func Dial(socket string) *Client {
	c := &Client{socket: socket}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialOwn(ctx, socket)
		},
		MaxIdleConns:        32,
		MaxIdleConnsPerHost: 32,
		// The daemon closes its side after two idle minutes.
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	c.hc = &http.Client{Transport: tr}
	return c
}

// DialNode returns a client of a cluster node's node-to-node endpoint at
// addr (host:port, over TCP), which answers the same requests as a
// daemon's socket to whoever presents token as a bearer token. The
// transport resends nothing the node may have received, as Dial's.
func DialNode(addr, token string) *Client {
	c := &Client{socket: addr, token: token, tcp: true}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		MaxIdleConns:        32,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	c.hc = &http.Client{Transport: tr}
	return c
}

// dialOwn connects to socket after checking that the file is a socket of
// this user, then checks that the listening process is of this user too,
// before anything is written.
func dialOwn(ctx context.Context, socket string) (net.Conn, error) {
	uid := os.Getuid()
	fi, err := os.Lstat(socket)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w listens on %s", ErrNoDaemon, socket)
		}
		return nil, fmt.Errorf("connect to %s: %w", socket, err)
	}
	switch owner, ok := fileOwner(fi); {
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, refuse("refusing to connect to %s: it is a symbolic link, not the daemon's socket", socket)
	case fi.Mode()&fs.ModeSocket == 0:
		return nil, refuse("refusing to connect to %s: it is not a socket", socket)
	case ok && owner != uid:
		return nil, refuse("refusing to connect to %s: the socket belongs to uid %d, not to you (uid %d); another user may be listening there", socket, owner, uid)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w listens on %s", ErrNoDaemon, socket)
		}
		return nil, fmt.Errorf("connect to %s: %w", socket, err)
	}
	cred, err := peercred.Of(conn)
	if err != nil {
		conn.Close()
		return nil, refuse("refusing to talk to %s: %v", socket, err)
	}
	if int(cred.UID) != uid {
		conn.Close()
		return nil, refuse("refusing to talk to %s: the process listening there runs as uid %d, not as you (uid %d)", socket, cred.UID, uid)
	}
	return conn, nil
}

// Socket returns the path the client connects to.
func (c *Client) Socket() string { return c.socket }

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// request sends one request and returns the response of status 2xx; any
// other status is turned into the daemon's error.
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	host := "whenlua"
	if c.tcp {
		host = c.socket
	}
	u := "http://" + host + "/v" + strconv.Itoa(ProtocolVersion) + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set(ProtocolHeader, strconv.Itoa(ProtocolVersion))
	if c.tcp {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, ErrNoDaemon) || errors.Is(err, ErrNotOurDaemon) {
			return nil, err
		}
		return nil, fmt.Errorf("daemon at %s: %w", c.socket, err)
	}
	if v := resp.Header.Get(ProtocolHeader); v != "" && v != strconv.Itoa(ProtocolVersion) {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: the daemon speaks protocol v%s, this client v%d: restart the daemon with this version (whenlua daemon restart)", ErrProtocol, v, ProtocolVersion)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var eb ErrorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb = ErrorBody{Error: fmt.Sprintf("daemon answered %s: %s", resp.Status, strings.TrimSpace(string(b))), Kind: KindInternal}
		}
		return nil, RemoteError(eb.Kind, eb.Error)
	}
	return resp, nil
}

// call sends one request and decodes its JSON reply into out (when non-nil).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.request(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("decode reply of %s: %w", path, err)
	}
	// Read to EOF so that the connection is reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

func serialQuery(serial uint64) url.Values {
	return url.Values{"serial": {strconv.FormatUint(serial, 10)}}
}

// Set implements Service.
func (c *Client) Set(ctx context.Context, req SetRequest) (SetResponse, error) {
	var out SetResponse
	err := c.call(ctx, http.MethodPost, "/set", nil, req, &out)
	return out, err
}

// Get implements Service.
func (c *Client) Get(ctx context.Context, name string) (Value, error) {
	var out Value
	err := c.call(ctx, http.MethodGet, "/get", url.Values{"name": {name}}, nil, &out)
	return out, err
}

// Vars implements Service.
func (c *Client) Vars(ctx context.Context) (map[string]Value, error) {
	out := map[string]Value{}
	err := c.call(ctx, http.MethodGet, "/vars", nil, nil, &out)
	return out, err
}

// History implements Service.
func (c *Client) History(ctx context.Context, name string, n int) ([]Version, error) {
	var out []Version
	err := c.call(ctx, http.MethodGet, "/history", url.Values{"name": {name}, "n": {strconv.Itoa(n)}}, nil, &out)
	return out, err
}

// Why implements Service.
func (c *Client) Why(ctx context.Context, job string) (WhyReport, error) {
	var out WhyReport
	err := c.call(ctx, http.MethodGet, "/why", url.Values{"job": {job}}, nil, &out)
	return out, err
}

// Names implements Service.
func (c *Client) Names(ctx context.Context) ([]JobInfo, error) {
	var out []JobInfo
	err := c.call(ctx, http.MethodGet, "/names", nil, nil, &out)
	return out, err
}

// Jobs implements Service.
func (c *Client) Jobs(ctx context.Context) ([]Run, error) {
	var out []Run
	err := c.call(ctx, http.MethodGet, "/jobs", nil, nil, &out)
	return out, err
}

// Start implements Service.
func (c *Client) Start(ctx context.Context, name string) (Run, error) {
	var out Run
	err := c.call(ctx, http.MethodPost, "/start", nil, StartRequest{Name: name}, &out)
	return out, err
}

// Cancel implements Service.
func (c *Client) Cancel(ctx context.Context, serial uint64) error {
	return c.call(ctx, http.MethodPost, "/cancel", nil, CancelRequest{Serial: serial}, nil)
}

// Tail implements Service: it copies the streamed output to w until the
// daemon ends the stream or ctx is done.
func (c *Client) Tail(ctx context.Context, serial uint64, w io.Writer) error {
	resp, err := c.request(ctx, http.MethodGet, "/tail", serialQuery(serial), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("tail run %d: %w", serial, err)
	}
	if msg := resp.Trailer.Get(TailErrorTrailer); msg != "" {
		return RemoteError(resp.Trailer.Get(TailKindTrailer), msg)
	}
	return nil
}

// Log implements Service.
func (c *Client) Log(ctx context.Context, job string, n int) ([]Run, error) {
	var out []Run
	err := c.call(ctx, http.MethodGet, "/log", url.Values{"job": {job}, "n": {strconv.Itoa(n)}}, nil, &out)
	return out, err
}

// Run implements Service.
func (c *Client) Run(ctx context.Context, serial uint64) (Run, error) {
	var out Run
	err := c.call(ctx, http.MethodGet, "/run", serialQuery(serial), nil, &out)
	return out, err
}

// Status implements Service.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	err := c.call(ctx, http.MethodGet, "/status", nil, nil, &out)
	return out, err
}

// Reload implements Service.
func (c *Client) Reload(ctx context.Context, req ReloadRequest) (Status, error) {
	var out Status
	err := c.call(ctx, http.MethodPost, "/reload", nil, req, &out)
	return out, err
}

// Ping asks the daemon who it is. It is the cheapest way to learn whether a
// daemon answers on the socket.
func (c *Client) Ping(ctx context.Context) (Ping, error) {
	var out Ping
	err := c.call(ctx, http.MethodGet, "/ping", nil, nil, &out)
	return out, err
}

// Shutdown asks the daemon to stop gracefully. It returns once the daemon
// has accepted the request, not when it has stopped.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/shutdown", nil, struct{}{}, nil)
}
