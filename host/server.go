package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/peercred"
)

// ServerOptions configures a Server.
type ServerOptions struct {
	// Logger receives refused peers and failed requests (nil: slog.Default()).
	Logger *slog.Logger
	// UID is the only user whose connections are served; peers of any
	// other uid get 403. 0 means the daemon's own uid.
	UID int
	// Ping answers /v1/ping (nil: the process's pid, version and protocol).
	Ping func() whenlua.Ping
	// Shutdown is called once /v1/shutdown has been answered; the daemon
	// then closes the server and everything behind it. Nil: the server
	// has no /v1/shutdown.
	Shutdown func()
	// Authorize, when set, replaces the check of the peer's uid: a request
	// it returns an error for gets 403. A cluster's node-to-node endpoint
	// (TCP, where the kernel tells no uid) checks a bearer token with it.
	Authorize func(*http.Request) error
}

// Server serves a whenlua.Service over HTTP+JSON on a unix socket (the
// protocol is described in the root package, next to Client). It refuses
// peers of another uid, read from the kernel on each accepted connection
// (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS and FreeBSD).
type Server struct {
	svc  whenlua.Service
	opts ServerOptions
	log  *slog.Logger
	hs   *http.Server

	// streams is cancelled by Close so that tails end at once instead of
	// holding the graceful shutdown until their runs end.
	streams      context.Context
	closeStreams context.CancelFunc
	shutdownOnce sync.Once
}

type peerKey struct{}

// peerCred is who is at the other end of an accepted connection.
type peerCred struct {
	UID uint32
	PID int32
	Err error // non-nil when the credentials could not be read
}

// peerCredOf reads the credentials the kernel recorded for the peer of a
// unix socket connection (internal/peercred).
func peerCredOf(c net.Conn) peerCred {
	cred, err := peercred.Of(c)
	return peerCred{UID: cred.UID, PID: cred.PID, Err: err}
}

// NewServer returns a server of svc. It starts nothing: Serve does.
func NewServer(svc whenlua.Service, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.UID == 0 {
		opts.UID = os.Getuid()
	}
	if opts.Ping == nil {
		pid, started := os.Getpid(), time.Now()
		opts.Ping = func() whenlua.Ping {
			return whenlua.Ping{PID: pid, Version: whenlua.BuildVersion, Protocol: whenlua.ProtocolVersion, Started: started}
		}
	}
	s := &Server{svc: svc, opts: opts, log: opts.Logger}
	s.streams, s.closeStreams = context.WithCancel(context.Background())
	s.hs = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	if opts.Authorize == nil {
		s.hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerCredOf(c))
		}
	}
	return s
}

// Serve accepts connections on l until Close. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting connections, ends the streams, and waits for the
// requests in flight until ctx is done (then it cuts them).
func (s *Server) Close(ctx context.Context) error {
	s.closeStreams()
	err := s.hs.Shutdown(ctx)
	if err != nil {
		s.hs.Close()
	}
	return err
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/set", s.handleSet)
	mux.HandleFunc("GET /v1/get", s.handleGet)
	mux.HandleFunc("GET /v1/vars", s.handleVars)
	mux.HandleFunc("GET /v1/history", s.handleHistory)
	mux.HandleFunc("GET /v1/histories", s.handleHistories)
	mux.HandleFunc("GET /v1/names", s.handleNames)
	mux.HandleFunc("GET /v1/jobs", s.handleJobs)
	mux.HandleFunc("POST /v1/start", s.handleStart)
	mux.HandleFunc("POST /v1/cancel", s.handleCancel)
	mux.HandleFunc("GET /v1/tail", s.handleTail)
	mux.HandleFunc("GET /v1/log", s.handleLog)
	mux.HandleFunc("GET /v1/run", s.handleRun)
	mux.HandleFunc("GET /v1/why", s.handleWhy)
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("POST /v1/reload", s.handleReload)
	mux.HandleFunc("GET /v1/ping", s.handlePing)
	if s.opts.Shutdown != nil {
		mux.HandleFunc("POST /v1/shutdown", s.handleShutdown)
	}
	mux.HandleFunc("/", s.handleUnknown)
	return s.guard(mux)
}

var versionPath = regexp.MustCompile(`^/v([0-9]+)(/|$)`)

// guard refuses peers of another uid and requests of another protocol
// version before any handler runs.
func (s *Server) guard(next http.Handler) http.Handler {
	want := strconv.Itoa(whenlua.ProtocolVersion)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(whenlua.ProtocolHeader, want)
		if s.opts.Authorize != nil {
			if err := s.opts.Authorize(r); err != nil {
				s.log.Warn("refused a request", "remote", r.RemoteAddr, "err", err, "path", r.URL.Path)
				writeError(w, http.StatusForbidden, whenlua.KindForbidden, "permission denied: "+err.Error())
				return
			}
		} else if peer, _ := r.Context().Value(peerKey{}).(peerCred); peer.Err != nil || int(peer.UID) != s.opts.UID {
			s.log.Warn("refused a peer of another user", "uid", peer.UID, "pid", peer.PID, "err", peer.Err, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, whenlua.KindForbidden,
				fmt.Sprintf("permission denied: the daemon serves only uid %d, not uid %d", s.opts.UID, peer.UID))
			return
		}
		got := r.Header.Get(whenlua.ProtocolHeader)
		if m := versionPath.FindStringSubmatch(r.URL.Path); m != nil && m[1] != want {
			got = m[1]
		}
		if got != "" && got != want {
			writeError(w, http.StatusBadRequest, whenlua.KindProtocol,
				fmt.Sprintf("protocol version mismatch: the client speaks v%s, the daemon v%s: use the same whenlua version for both (whenlua daemon restart)", got, want))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleUnknown(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, whenlua.KindNotFound, fmt.Sprintf("not found: no request %s %s", r.Method, r.URL.Path))
}

// writeError writes an ErrorBody. The message is kept on one line.
func writeError(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(whenlua.ErrorBody{Error: oneLine(msg), Kind: kind})
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

var kindStatus = map[string]int{
	whenlua.KindInvalid:   http.StatusBadRequest,
	whenlua.KindNotFound:  http.StatusNotFound,
	whenlua.KindConflict:  http.StatusConflict,
	whenlua.KindForbidden: http.StatusForbidden,
	whenlua.KindProtocol:  http.StatusBadRequest,
	whenlua.KindNotLeader: http.StatusServiceUnavailable,
	whenlua.KindInternal:  http.StatusInternalServerError,
}

// fail answers a service error, keeping its kind.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	kind := whenlua.ErrorKind(err)
	status := kindStatus[kind]
	if kind == whenlua.KindInternal {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusServiceUnavailable
		}
		s.log.Warn("request failed", "path", r.URL.Path, "err", err)
	}
	writeError(w, status, kind, err.Error())
}

// answer replies v, or fails with err: the end of a handler that called
// the service.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, v)
}

// orEmpty makes a nil slice empty, so that it is answered as [] rather
// than null.
func orEmpty[S ~[]E, E any](s S) S {
	if s == nil {
		return S{}
	}
	return s
}

func (s *Server) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("write reply", "err", err)
	}
}

// decode reads a JSON request body of at most 16 MiB, exactly one value
// (white space aside), into v.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: bad request body: %v", whenlua.ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: bad request body: more than one JSON value", whenlua.ErrInvalid)
	}
	return nil
}

func intParam(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not a number", whenlua.ErrInvalid, name, v)
	}
	return n, nil
}

func serialParam(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("serial")
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: serial %q is not a run serial", whenlua.ErrInvalid, v)
	}
	return n, nil
}

func (s *Server) handleSet(w http.ResponseWriter, r *http.Request) {
	var req whenlua.SetRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := req.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	resp, err := s.svc.Set(r.Context(), req)
	resp.Triggered = orEmpty(resp.Triggered)
	s.answer(w, r, resp, err)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	v, err := s.svc.Get(r.Context(), r.URL.Query().Get("name"))
	s.answer(w, r, v, err)
}

func (s *Server) handleVars(w http.ResponseWriter, r *http.Request) {
	vars, err := s.svc.Vars(r.Context())
	if vars == nil {
		vars = map[string]whenlua.Value{}
	}
	s.answer(w, r, vars, err)
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "n")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	vs, err := s.svc.History(r.Context(), r.URL.Query().Get("name"), n)
	s.answer(w, r, orEmpty(vs), err)
}

func (s *Server) handleWhy(w http.ResponseWriter, r *http.Request) {
	rep, err := s.svc.Why(r.Context(), r.URL.Query().Get("job"))
	s.answer(w, r, rep, err)
}

func (s *Server) handleNames(w http.ResponseWriter, r *http.Request) {
	jobs, err := s.svc.Names(r.Context())
	s.answer(w, r, orEmpty(jobs), err)
}

func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) {
	runs, err := s.svc.Jobs(r.Context())
	s.answer(w, r, orEmpty(runs), err)
}

func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	var req whenlua.StartRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	run, err := s.svc.Start(r.Context(), req.Name)
	s.answer(w, r, run, err)
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	var req whenlua.CancelRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	err := s.svc.Cancel(r.Context(), req.Serial)
	s.answer(w, r, struct{}{}, err)
}

// streamWriter sends each write to the client at once. The first write
// commits the 200 status and declares the error trailers.
type streamWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	wrote bool
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	if !sw.wrote {
		sw.wrote = true
		h := sw.w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Trailer", whenlua.TailErrorTrailer+", "+whenlua.TailKindTrailer)
		sw.w.WriteHeader(http.StatusOK)
	}
	n, err := sw.w.Write(p)
	if err == nil {
		err = sw.rc.Flush()
	}
	return n, err
}

// stream answers r with what write writes to sw, until r or the server's
// streams end. An error before the first byte is answered as any other;
// one after it goes in the trailers.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, write func(ctx context.Context, sw *streamWriter) error) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.streams, cancel)
	defer stop()
	sw := &streamWriter{w: w, rc: http.NewResponseController(w)}
	err := write(ctx, sw)
	switch {
	case err != nil && !sw.wrote:
		s.fail(w, r, err)
	case err != nil && r.Context().Err() == nil:
		if s.streams.Err() != nil {
			err = errors.New("the daemon is stopping")
		}
		w.Header().Set(whenlua.TailErrorTrailer, oneLine(err.Error()))
		w.Header().Set(whenlua.TailKindTrailer, whenlua.ErrorKind(err))
	case !sw.wrote:
		w.WriteHeader(http.StatusOK)
	}
}

func (s *Server) handleTail(w http.ResponseWriter, r *http.Request) {
	serial, err := serialParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.stream(w, r, func(ctx context.Context, sw *streamWriter) error { return s.svc.Tail(ctx, serial, sw) })
}

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "n")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	runs, err := s.svc.Log(r.Context(), r.URL.Query().Get("job"), n)
	s.answer(w, r, orEmpty(runs), err)
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	serial, err := serialParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	run, err := s.svc.Run(r.Context(), serial)
	s.answer(w, r, run, err)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.svc.Status(r.Context())
	s.answer(w, r, st, err)
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	// A body is optional: no body is a plain rescan.
	var req whenlua.ReloadRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	st, err := s.svc.Reload(r.Context(), req)
	s.answer(w, r, st, err)
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	s.reply(w, s.opts.Ping())
}

func (s *Server) handleShutdown(w http.ResponseWriter, r *http.Request) {
	s.reply(w, struct{}{})
	_ = http.NewResponseController(w).Flush()
	s.log.Info("shutdown requested over the socket")
	if s.opts.Shutdown != nil {
		s.shutdownOnce.Do(s.opts.Shutdown)
	}
}
