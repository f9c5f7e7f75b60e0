package whenlua

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connServer serves h on a unix socket and keeps the server side of every
// connection, so that a test can count them or close them.
type connServer struct {
	sock  string
	mu    sync.Mutex
	conns []net.Conn
}

func newConnServer(t *testing.T, h http.Handler) *connServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "wlt")
	if err != nil {
		t.Fatal(err)
	}
	cs := &connServer{sock: filepath.Join(dir, "s.sock")}
	l, err := net.Listen("unix", cs.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			cs.mu.Lock()
			cs.conns = append(cs.conns, c)
			cs.mu.Unlock()
		}
	}}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		os.RemoveAll(dir)
	})
	return cs
}

func (cs *connServer) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.conns)
}

// closeAll closes the server side of every connection so far.
func (cs *connServer) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.conns {
		c.Close()
	}
}

func pingHandler(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"version":"test"}`))
	})
}

func TestSequentialCallsShareOneConnection(t *testing.T) {
	var calls atomic.Int64
	cs := newConnServer(t, pingHandler(&calls))
	c := Dial(cs.sock)
	defer c.Close()
	for range 20 {
		if _, err := c.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := cs.count(); n != 1 {
		t.Errorf("20 calls opened %d connections, want 1", n)
	}
}

func TestAConnectionTheDaemonClosedWhileIdleIsNotReused(t *testing.T) {
	var calls atomic.Int64
	cs := newConnServer(t, pingHandler(&calls))
	c := Dial(cs.sock)
	defer c.Close()
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Whether the client has seen the close yet or not, the call must
	// succeed: net/http drops a connection it sees closed, and sends again
	// a request of which nothing could be written.
	cs.closeAll()
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatalf("call after the daemon closed the idle connection: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the handler ran %d times, want 2 (each call once)", n)
	}
	if n := cs.count(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// streamHandler writes a line every 10 ms until the client goes away.
func streamHandler(w http.ResponseWriter, r *http.Request) {
	for {
		if _, err := w.Write([]byte("line\n")); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

type countWriter struct{ n atomic.Int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

func TestACancelledStreamReturnsAndItsConnectionIsNotReused(t *testing.T) {
	var calls atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/tail", streamHandler)
	mux.Handle("/v1/ping", pingHandler(&calls))
	cs := newConnServer(t, mux)
	c := Dial(cs.sock)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var out countWriter
	t0 := time.Now()
	err := c.Tail(ctx, 1, &out)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Tail = %v, want the context's deadline", err)
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("Tail returned %s after its context ended", el)
	}
	if out.n.Load() == 0 {
		t.Error("nothing streamed before the cancel")
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := cs.count(); n != 2 {
		t.Errorf("%d connections, want 2: the cancelled stream's is not reused", n)
	}
}

func TestClosingAStreamBeforeItsEndDoesNotReadTheRest(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/tail", streamHandler)
	cs := newConnServer(t, mux)
	c := Dial(cs.sock)
	defer c.Close()
	resp, err := c.request(context.Background(), http.MethodGet, "/tail", serialQuery(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- resp.Body.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("closing an endless body blocks")
	}
}

// A daemon restart closes every pooled connection: the next call must not
// fail on any of them.
func TestEveryIdleConnectionClosedByARestartIsSkipped(t *testing.T) {
	entered := make(chan struct{}, 3)
	gate := make(chan struct{})
	cs := newConnServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-gate
		w.Write([]byte(`{"version":"test"}`))
	}))
	c := Dial(cs.sock)
	defer c.Close()
	// Three calls at once leave three idle connections.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Ping(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	for range 3 {
		<-entered
	}
	close(gate)
	wg.Wait()
	cs.closeAll()
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatalf("first call after the daemon closed its connections: %v", err)
	}
	if n := cs.count(); n != 4 {
		t.Errorf("%d connections, want 4", n)
	}
}

// A change the daemon acted on before the connection broke must not be
// sent a second time: the caller gets the error, the job runs once.
func TestAChangeTheDaemonMayHaveMadeIsNotSentTwice(t *testing.T) {
	var calls, starts atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("/v1/ping", pingHandler(&calls))
	mux.HandleFunc("/v1/start", func(w http.ResponseWriter, r *http.Request) {
		if starts.Add(1) == 1 {
			panic(http.ErrAbortHandler) // acted on, then the connection is dropped
		}
		w.Write([]byte(`{}`))
	})
	cs := newConnServer(t, mux)
	c := Dial(cs.sock)
	defer c.Close()
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(context.Background(), "job"); err == nil {
		t.Error("Start succeeded although its connection broke before the answer")
	}
	if n := starts.Load(); n != 1 {
		t.Errorf("the start was made %d times, want once", n)
	}
}

// A read whose connection broke before any answer is asked again, once,
// on a new connection.
func TestAReadWhoseConnectionBrokeIsAskedOnceMore(t *testing.T) {
	var calls atomic.Int64
	cs := newConnServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			panic(http.ErrAbortHandler)
		}
		w.Write([]byte(`{"version":"test"}`))
	}))
	c := Dial(cs.sock)
	defer c.Close()
	for i := range 2 {
		if _, err := c.Ping(context.Background()); err != nil {
			t.Fatalf("ping %d: %v", i+1, err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("the handler ran %d times, want 3", n)
	}
}
