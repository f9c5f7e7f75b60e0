package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// fakeService is an in-memory Service for testing the protocol alone.
type fakeService struct {
	mu      sync.Mutex
	vars    map[string]whenlua.Value
	history map[string][]whenlua.Version
	// tail is what Tail writes, one chunk at a time, before tailErr.
	tail    []string
	tailErr error
}

func newFakeService() *fakeService {
	return &fakeService{vars: map[string]whenlua.Value{}, history: map[string][]whenlua.Version{}}
}

func (f *fakeService) Set(ctx context.Context, req whenlua.SetRequest) (whenlua.SetResponse, error) {
	for _, a := range req.Assignments {
		if err := a.Validate(); err != nil {
			return whenlua.SetResponse{}, err
		}
	}
	if req.Mode == whenlua.ModeTest {
		return whenlua.SetResponse{Triggered: []string{"would." + req.Assignments[0].Name}}, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	origin := req.Origin
	if origin == "" {
		origin = whenlua.OriginCLI
	}
	whenlua.ApplyAssignments(f.vars, req.Assignments)
	for _, a := range req.Assignments {
		f.history[a.Name] = append([]whenlua.Version{{Value: a.Value, Time: time.Now(), Origin: origin}}, f.history[a.Name]...)
	}
	return whenlua.SetResponse{Triggered: []string{}}, nil
}

func (f *fakeService) Get(ctx context.Context, name string) (whenlua.Value, error) {
	if err := whenlua.ValidateName(name); err != nil {
		return whenlua.Nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vars[name], nil
}

func (f *fakeService) Vars(ctx context.Context) (map[string]whenlua.Value, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]whenlua.Value{}
	for k, v := range f.vars {
		out[k] = v
	}
	return out, nil
}

func (f *fakeService) History(ctx context.Context, name string, n int) ([]whenlua.Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.history[name]
	if n > 0 && len(h) > n {
		h = h[:n]
	}
	return h, nil
}

func (f *fakeService) Names(ctx context.Context) ([]whenlua.JobInfo, error) {
	return []whenlua.JobInfo{{Name: "a.1", Kind: "when", Cond: "x > 1", File: "a.lua", Line: 1}}, nil
}

func (f *fakeService) Jobs(ctx context.Context) ([]whenlua.Run, error) { return nil, nil }

func (f *fakeService) Start(ctx context.Context, name string) (whenlua.Run, error) {
	if name == "busy" {
		return whenlua.Run{}, fmt.Errorf("%w: job busy is already running", whenlua.ErrConflict)
	}
	return whenlua.Run{}, fmt.Errorf("%w: no job %s", whenlua.ErrNotFound, name)
}

func (f *fakeService) Cancel(ctx context.Context, serial uint64) error {
	return fmt.Errorf("%w: no running run %d", whenlua.ErrNotFound, serial)
}

func (f *fakeService) Tail(ctx context.Context, serial uint64, w io.Writer) error {
	if serial == 404 {
		return fmt.Errorf("%w: no run %d", whenlua.ErrNotFound, serial)
	}
	for _, chunk := range f.tail {
		if _, err := io.WriteString(w, chunk); err != nil {
			return err
		}
	}
	if serial == 7 { // follows until the caller goes away
		<-ctx.Done()
		return ctx.Err()
	}
	return f.tailErr
}

func (f *fakeService) Log(ctx context.Context, job string, n int) ([]whenlua.Run, error) {
	return []whenlua.Run{{Serial: 3, Job: job, State: whenlua.RunDone}}, nil
}

func (f *fakeService) Why(ctx context.Context, job string) (whenlua.WhyReport, error) {
	return whenlua.WhyReport{Job: job, Evaluations: []whenlua.Evaluation{}}, nil
}

func (f *fakeService) Run(ctx context.Context, serial uint64) (whenlua.Run, error) {
	return whenlua.Run{Serial: serial, State: whenlua.RunDone, Output: []byte("out\n")}, nil
}

func (f *fakeService) Status(ctx context.Context) (whenlua.Status, error) {
	return whenlua.Status{Running: 2}, nil
}

func (f *fakeService) Reload(ctx context.Context, _ whenlua.ReloadRequest) (whenlua.Status, error) {
	return whenlua.Status{Compiles: 1}, nil
}

// testServer serves svc on a socket in a temp dir and returns a client of it.
type testServer struct {
	*Server
	client   *whenlua.Client
	socket   string
	shutdown chan struct{}
	served   chan error
}

func serveFake(t *testing.T, svc whenlua.Service, opts ServerOptions) *testServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "wls")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	l, err := listenSocket(sock)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{socket: sock, shutdown: make(chan struct{}), served: make(chan error, 1)}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts.Shutdown = func() { close(ts.shutdown) }
	ts.Server = NewServer(svc, opts)
	go func() { ts.served <- ts.Serve(l) }()
	ts.client = whenlua.Dial(sock)
	t.Cleanup(func() {
		ts.client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := <-ts.served; err != nil {
			t.Error(err)
		}
	})
	return ts
}

func TestClientAndServerRoundTripTypedValues(t *testing.T) {
	ts := serveFake(t, newFakeService(), ServerOptions{})
	ctx := context.Background()
	want := map[string]whenlua.Value{
		"s": whenlua.String("5"), "i": whenlua.Int(5), "f": whenlua.Float(2.5), "b": whenlua.Bool(true),
	}
	var as []whenlua.Assignment
	for k, v := range want {
		as = append(as, whenlua.Assignment{Name: k, Value: v})
	}
	if _, err := ts.client.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: as}); err != nil {
		t.Fatal(err)
	}
	got, err := ts.client.Vars(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if !got[k].Equal(v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	v, err := ts.client.Get(ctx, "unknown")
	if err != nil || !v.IsNil() {
		t.Errorf("Get(unknown) = %v, %v; want nil value", v, err)
	}
	h, err := ts.client.History(ctx, "i", 0)
	if err != nil || len(h) != 1 || h[0].Origin != whenlua.OriginCLI {
		t.Errorf("History = %v, %v", h, err)
	}
	resp, err := ts.client.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeTest, Assignments: as[:1]})
	if err != nil || len(resp.Triggered) != 1 {
		t.Errorf("test mode = %v, %v", resp, err)
	}
	st, err := ts.client.Status(ctx)
	if err != nil || st.Running != 2 {
		t.Errorf("Status = %+v, %v", st, err)
	}
	r, err := ts.client.Run(ctx, 9)
	if err != nil || r.Serial != 9 || string(r.Output) != "out\n" {
		t.Errorf("Run = %+v, %v", r, err)
	}
}

func TestErrorKindsKeepTheirIdentityAcrossTheSocket(t *testing.T) {
	ts := serveFake(t, newFakeService(), ServerOptions{})
	ctx := context.Background()
	_, err := ts.client.Set(ctx, whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "JOBSERIAL", Value: whenlua.Int(1)}}})
	if !errors.Is(err, whenlua.ErrInvalid) || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("reserved name: %v, want ErrInvalid", err)
	}
	if _, err := ts.client.Start(ctx, "nope"); !errors.Is(err, whenlua.ErrNotFound) {
		t.Errorf("start of an unknown job: %v, want ErrNotFound", err)
	}
	if _, err := ts.client.Start(ctx, "busy"); !errors.Is(err, whenlua.ErrConflict) {
		t.Errorf("start of a busy job: %v, want ErrConflict", err)
	}
	if err := ts.client.Cancel(ctx, 5); !errors.Is(err, whenlua.ErrNotFound) || errors.Is(err, whenlua.ErrInvalid) {
		t.Errorf("cancel: %v, want ErrNotFound only", err)
	}
}

func TestAClientWithNoDaemonGetsErrNoDaemon(t *testing.T) {
	dir := t.TempDir()
	c := whenlua.Dial(filepath.Join(dir, "none.sock"))
	defer c.Close()
	if _, err := c.Vars(context.Background()); !errors.Is(err, whenlua.ErrNoDaemon) {
		t.Errorf("no socket: %v, want ErrNoDaemon", err)
	}
	// A stale socket file nobody listens on.
	sock := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	c2 := whenlua.Dial(sock)
	defer c2.Close()
	if _, err := c2.Ping(context.Background()); !errors.Is(err, whenlua.ErrNoDaemon) {
		t.Errorf("stale socket: %v, want ErrNoDaemon", err)
	}
}

func TestAPeerOfAnotherUIDIsRefused(t *testing.T) {
	var logged strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	svc := newFakeService()
	ts := serveFake(t, svc, ServerOptions{UID: os.Getuid() + 4242, Logger: log})
	_, err := ts.client.Set(context.Background(), whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(1)}}})
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("set from another uid: %v, want permission denied", err)
	}
	if len(svc.vars) != 0 {
		t.Errorf("a refused peer changed variables: %v", svc.vars)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "refused a peer") {
		t.Errorf("no log line for the refused peer; log: %q", logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// rawRequest sends one HTTP request line by hand and returns the status
// line and the body.
func rawRequest(t *testing.T, socket, req string) (string, string) {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	status, _, _ := strings.Cut(string(b), "\r\n")
	_, body, _ := strings.Cut(string(b), "\r\n\r\n")
	return status, body
}

func TestAProtocolVersionMismatchGetsAClearError(t *testing.T) {
	ts := serveFake(t, newFakeService(), ServerOptions{})
	status, body := rawRequest(t, ts.socket, "GET /v2/vars HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.Contains(status, "400") || !strings.Contains(body, "protocol version mismatch") || !strings.Contains(body, "v2") {
		t.Errorf("v2 request: %s %s", status, body)
	}
	status, body = rawRequest(t, ts.socket, "GET /v1/vars HTTP/1.1\r\nHost: x\r\nWhenlua-Protocol: 3\r\nConnection: close\r\n\r\n")
	if !strings.Contains(status, "400") || !strings.Contains(body, "v3") {
		t.Errorf("v1 path with protocol header 3: %s %s", status, body)
	}
	status, _ = rawRequest(t, ts.socket, "GET /v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.Contains(status, "200") {
		t.Errorf("a plain v1 request (as curl sends it): %s", status)
	}
}

func TestTailStreamsAndReportsALateErrorInTheTrailer(t *testing.T) {
	svc := newFakeService()
	svc.tail = []string{"one\n", "two\n"}
	svc.tailErr = fmt.Errorf("%w: run 5 vanished", whenlua.ErrNotFound)
	ts := serveFake(t, svc, ServerOptions{})
	var out strings.Builder
	err := ts.client.Tail(context.Background(), 5, &out)
	if out.String() != "one\ntwo\n" {
		t.Errorf("tail output %q", out.String())
	}
	if !errors.Is(err, whenlua.ErrNotFound) || !strings.Contains(err.Error(), "vanished") {
		t.Errorf("tail error %v, want the late ErrNotFound", err)
	}
	if err := ts.client.Tail(context.Background(), 404, io.Discard); !errors.Is(err, whenlua.ErrNotFound) {
		t.Errorf("tail of an unknown run: %v", err)
	}
}

func TestATailInProgressEndsWhenTheServerCloses(t *testing.T) {
	svc := newFakeService()
	svc.tail = []string{"first line\n"}
	ts := serveFake(t, svc, ServerOptions{})
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ts.client.Tail(context.Background(), 7, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || line != "first line\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	go io.Copy(io.Discard, pr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Close(ctx); err != nil {
		t.Fatalf("close with a tail in progress: %v", err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "stopping") {
			t.Errorf("tail ended with %v, want the daemon is stopping", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail still running after Close")
	}
}

func TestShutdownAndPingOverTheSocket(t *testing.T) {
	ts := serveFake(t, newFakeService(), ServerOptions{})
	ctx := context.Background()
	p, err := ts.client.Ping(ctx)
	if err != nil || p.PID != os.Getpid() || p.Protocol != whenlua.ProtocolVersion {
		t.Fatalf("ping = %+v, %v", p, err)
	}
	if err := ts.client.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ts.shutdown:
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown callback not called")
	}
}

func TestConcurrentClientsShareOneClient(t *testing.T) {
	ts := serveFake(t, newFakeService(), ServerOptions{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				name := fmt.Sprintf("v%d", g)
				_, err := ts.client.Set(context.Background(), whenlua.SetRequest{Mode: whenlua.ModeSet,
					Assignments: []whenlua.Assignment{{Name: name, Value: whenlua.Int(int64(i))}}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	vars, err := ts.client.Vars(context.Background())
	if err != nil || len(vars) != 8 || !vars["v3"].Equal(whenlua.Int(49)) {
		t.Errorf("vars = %v, %v", vars, err)
	}
}

// nopSetService answers every set at once, so that a benchmark measures
// the socket protocol alone.
type nopSetService struct{ *fakeService }

func (nopSetService) Set(context.Context, whenlua.SetRequest) (whenlua.SetResponse, error) {
	return whenlua.SetResponse{}, nil
}

// BenchmarkSocketRoundTrip is the protocol's share of a set: one client,
// HTTP+JSON over the unix socket, a service that does nothing.
func BenchmarkSocketRoundTrip(b *testing.B) {
	p := daemonHome(b)
	if err := p.Ensure(); err != nil {
		b.Fatal(err)
	}
	l, err := listenSocket(p.Socket)
	if err != nil {
		b.Fatal(err)
	}
	s := NewServer(nopSetService{newFakeService()}, ServerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	c := whenlua.Dial(p.Socket)
	req := whenlua.SetRequest{Mode: whenlua.ModeSet, Assignments: []whenlua.Assignment{{Name: "x", Value: whenlua.Int(1)}}}
	b.ResetTimer()
	for range b.N {
		if _, err := c.Set(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.Close()
	if err := s.Close(context.Background()); err != nil {
		b.Error(err)
	}
	<-served
}

func TestASetBodyWithMoreThanOneJSONValueIsRefused(t *testing.T) {
	p := testPaths(t, t.TempDir())
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	srv := NewServer(te.Engine, ServerOptions{})
	body := `{"mode":"set","assignments":[{"name":"x","value":{"type":"int","value":1}}]} junk`
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/set", strings.NewReader(body))
	// The peer is this test's user, as over the socket (any uid, not only root).
	req = req.WithContext(context.WithValue(req.Context(), peerKey{}, peerCred{UID: uint32(os.Getuid())}))
	req.Header.Set(whenlua.ProtocolHeader, strconv.Itoa(whenlua.ProtocolVersion))
	srv.routes().ServeHTTP(rec, req)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "more than one JSON value") {
		t.Fatalf("status %d body %q, want 400", rec.Code, rec.Body)
	}
	if v := te.get("x"); !v.IsNil() {
		t.Fatalf("x = %v, want unset", v)
	}
}
