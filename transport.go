package whenlua

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// connTransport is the Client's http.RoundTripper. It writes a request and
// reads its response on the caller's goroutine, over a connection of its
// own pool: one request at a time per connection, as HTTP/1.1 without
// pipelining. net/http's Transport runs a reading and a writing goroutine
// per connection and hands each request and response between them; on a
// small machine those handoffs cost more than the daemon's work on a set.
type connTransport struct {
	dial func(ctx context.Context) (net.Conn, error)

	mu   sync.Mutex
	idle []*clientConn // most recently used last
}

// clientConn is one connection with its buffers.
type clientConn struct {
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

const (
	maxIdleConns = 32
	// idleConnTimeout is how long an idle connection is kept; the daemon
	// closes its side after two minutes.
	idleConnTimeout = 30 * time.Second
)

// errNothingWritten wraps a failure to send a request on a reused
// connection: the daemon cannot have acted on it, so it is sent again on
// a new connection.
type errNothingWritten struct{ err error }

func (e errNothingWritten) Error() string { return e.err.Error() }
func (e errNothingWritten) Unwrap() error { return e.err }

// errNoResponse wraps a connection closed before any byte of the response,
// on a reused connection: a GET is sent again, anything else is not, since
// the daemon may have acted on it before it went away.
type errNoResponse struct{ err error }

func (e errNoResponse) Error() string { return e.err.Error() }
func (e errNoResponse) Unwrap() error { return e.err }

// RoundTrip implements http.RoundTripper.
func (t *connTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	cc, reused, err := t.get(ctx)
	for {
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		var resp *http.Response
		if resp, err = t.exchange(ctx, cc, req, reused); err == nil {
			return resp, nil
		}
		cc.conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// exchange wraps errors as retryable on a reused connection only,
		// so this happens once.
		var nw errNothingWritten
		var nr errNoResponse
		retry := errors.As(err, &nw) || (errors.As(err, &nr) && (req.Method == http.MethodGet || req.Method == http.MethodHead))
		if !retry || (req.Body != nil && req.GetBody == nil) {
			return nil, err
		}
		// Once more, on a new connection (the idle ones may be as stale).
		again := req.Clone(ctx)
		if req.Body != nil {
			if again.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		req = again
		cc, err = t.dialConn(ctx)
		reused = false
	}
}

// get returns an idle connection, or a new one. One the daemon closed
// (it exited, or closed it after two idle minutes) fails the request's
// write with EPIPE, before anything reached the daemon: RoundTrip sends it
// again on a new connection.
func (t *connTransport) get(ctx context.Context) (cc *clientConn, reused bool, err error) {
	t.mu.Lock()
	for len(t.idle) > 0 {
		cc = t.idle[len(t.idle)-1]
		t.idle[len(t.idle)-1] = nil
		t.idle = t.idle[:len(t.idle)-1]
		if time.Since(cc.lastUsed) < idleConnTimeout {
			t.mu.Unlock()
			return cc, true, nil
		}
		cc.conn.Close()
	}
	t.mu.Unlock()
	cc, err = t.dialConn(ctx)
	return cc, false, err
}

// dialConn opens a new connection.
func (t *connTransport) dialConn(ctx context.Context) (*clientConn, error) {
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &clientConn{conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(conn)}, nil
}

// put makes cc idle, or closes it when the pool is full or the daemon
// sent more than the response.
func (t *connTransport) put(cc *clientConn) {
	cc.lastUsed = time.Now()
	t.mu.Lock()
	if len(t.idle) < maxIdleConns && cc.br.Buffered() == 0 {
		t.idle = append(t.idle, cc)
		cc = nil
	}
	t.mu.Unlock()
	if cc != nil {
		cc.conn.Close()
	}
}

// CloseIdleConnections closes the idle connections (http.Client calls it).
func (t *connTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, cc := range idle {
		cc.conn.Close()
	}
}

// exchange sends req on cc and reads the response head. The body is read
// by the caller; closing it returns cc to the pool when the body was read
// to its end.
func (t *connTransport) exchange(ctx context.Context, cc *clientConn, req *http.Request, reused bool) (*http.Response, error) {
	// Cancellation interrupts a blocked read or write through the deadline.
	stop := context.AfterFunc(ctx, func() { cc.conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		return nil, err
	}
	if err := req.Write(cc.bw); err != nil {
		if reused && isClosedConn(err) {
			err = errNothingWritten{err}
		}
		return fail(err)
	}
	if err := cc.bw.Flush(); err != nil {
		if reused && isClosedConn(err) {
			err = errNothingWritten{err}
		}
		return fail(err)
	}
	if _, err := cc.br.Peek(1); err != nil {
		if reused && isClosedConn(err) {
			err = errNoResponse{err}
		}
		return fail(err)
	}
	resp, err := http.ReadResponse(cc.br, req)
	if err != nil {
		return fail(err)
	}
	resp.Body = &connBody{body: resp.Body, t: t, cc: cc, stop: stop, keep: !resp.Close}
	return resp, nil
}

// isClosedConn tells the errors of a connection closed by the peer.
func isClosedConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// connBody is a response body that gives its connection back to the pool
// once read to the end and closed.
type connBody struct {
	body io.ReadCloser
	t    *connTransport
	cc   *clientConn
	stop func() bool
	keep bool // the response allows reuse
	eof  bool
	done bool
}

func (b *connBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("read on a closed response body")
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *connBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof || !b.keep {
		// net/http's Close reads a body to its end: a stream could go on
		// for as long as its run. Close the connection first.
		b.cc.conn.Close()
		b.body.Close()
		b.stop()
		return nil
	}
	err := b.body.Close()
	// stop reports false when the context's deadline was already set on
	// the connection: it cannot be reused.
	if b.stop() && err == nil {
		b.t.put(b.cc)
		return nil
	}
	b.cc.conn.Close()
	return err
}
