package host

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/persist"
)

// fuzzDaemon is an engine on a real store behind a Server's handler, for
// FuzzServerRequests. It is replaced by a fresh one every fuzzRotate inputs
// so that the store stays small however long the fuzzer runs.
type fuzzDaemon struct {
	engine  *Engine
	store   *persist.Store
	handler http.Handler
	dir     string
	inputs  int
}

const fuzzRotate = 2000

// fuzzJobs is the job file the fuzzed daemon has loaded: start, tail and
// test requests find a real job, whose run ends at once.
const fuzzJobs = `when("x == 1", "echo x is $x", {name="j"})
when(function() return changes("y") end, "true", {name="k"})
`

func openFuzzDaemon(tb testing.TB) *fuzzDaemon {
	tb.Helper()
	dir, err := os.MkdirTemp("", "wlfz")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := whenlua.ResolvePaths(filepath.Join(dir, "h"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Ensure(); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.JobsDir, "f.lua"), []byte(fuzzJobs), 0o600); err != nil {
		tb.Fatal(err)
	}
	store, err := persist.Open(persist.Options{Dir: p.DBDir, MaintainEvery: -1})
	if err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := NewEngine(EngineOptions{Store: store, Paths: p, Logger: quiet, PollEvery: -1,
		Grace: 100 * time.Millisecond, LuaTimeout: 200 * time.Millisecond})
	if err := e.Open(context.Background()); err != nil {
		store.Close()
		tb.Fatal(err)
	}
	srv := NewServer(daemonService{Service: e, paths: p}, ServerOptions{Logger: quiet})
	return &fuzzDaemon{engine: e, store: store, handler: srv.hs.Handler, dir: dir}
}

func (d *fuzzDaemon) close(tb testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.engine.Close(ctx); err != nil {
		tb.Errorf("close engine: %v", err)
	}
	if err := d.store.Close(); err != nil {
		tb.Errorf("close store: %v", err)
	}
	os.RemoveAll(d.dir)
}

// fuzzRoutes are the daemon's requests; FuzzServerRequests sends the body
// and query it is given to one of them, or to a path of its own.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/set"}, {"GET", "/v1/get"}, {"GET", "/v1/vars"}, {"GET", "/v1/history"},
	{"GET", "/v1/names"}, {"GET", "/v1/jobs"}, {"POST", "/v1/start"}, {"POST", "/v1/cancel"},
	{"GET", "/v1/tail"}, {"GET", "/v1/log"}, {"GET", "/v1/run"}, {"GET", "/v1/status"},
	{"POST", "/v1/reload"}, {"GET", "/v1/ping"},
}

// fuzzMethods leaves out CONNECT, which net/http's mux answers itself.
var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"}

// FuzzServerRequests sends arbitrary requests through the daemon's real
// handler (peer check, protocol check, routing, decoding) to a real engine
// and store. Nothing may panic or hang; a refused request gets a 4xx with
// a one-line ErrorBody of a known kind and changes no variable; an
// accepted set is what the variables then hold; and the engine answers
// after every request.
func FuzzServerRequests(f *testing.F) {
	seeds := []struct {
		sel         uint8
		target      string
		body, proto string
	}{
		{0, "", `{"mode":"set","assignments":[{"name":"x","value":{"type":"int","value":1}}]}`, "1"},
		{0, "", `{"mode":"whisper","assignments":[{"name":"y","value":{"type":"string","value":"a"}},{"name":"z","value":{"type":"nil"}}]}`, ""},
		{0, "", `{"mode":"test","assignments":[{"name":"x","value":{"type":"float","value":"NaN"}}]}`, "1"},
		{0, "", `{"mode":"set","assignments":[{"name":"x","value":{"type":"bool","value":true}},{"name":"x","value":{"type":"int","value":2}}]}`, "1"},
		{0, "", `{"mode":"bogus","assignments":[{"name":"JOBSERIAL","value":{"type":"int","value":1e99}}]}`, "1"},
		{0, "", `{"assignments":null}`, "2"},
		{0, "", `[1,2,3]`, "1"},
		{0, "", "{\"mode\":\"set\",\"assignments\":[{\"name\":\"s\",\"value\":{\"type\":\"string\",\"value\":\"\\u0000\\ud800\"}}]}", ""},
		{2, "name=x", "", "1"},
		{2, "name=", "", "1"},
		{4, "", "", "1"},
		{6, "name=x&n=-5", "", "1"},
		{6, "name=x&n=99999999999999999999", "", "1"},
		{8, "", "", "1"},
		{10, "", "", "1"},
		{12, "", `{"name":"j"}`, "1"},
		{12, "", `{"name":"nosuch"}`, "1"},
		{14, "", `{"serial":18446744073709551615}`, "1"},
		{16, "serial=1", "", "1"},
		{16, "serial=-1", "", "1"},
		{18, "job=j&n=1", "", "1"},
		{20, "serial=abc", "", "1"},
		{22, "", "", "1"},
		{24, "", "anything", "1"},
		{26, "", "", "99"},
		{1, "/v2/set", `{}`, "1"},
		{3, "/v1/shutdown?x=1", "", "1"},
		{5, "/../v1/vars", "", ""},
		{7, "/v1/set/", "{", "1"},
	}
	for _, s := range seeds {
		f.Add(s.sel, s.target, []byte(s.body), s.proto)
	}
	var d *fuzzDaemon
	f.Cleanup(func() {
		if d != nil {
			d.close(f)
		}
	})
	f.Fuzz(func(t *testing.T, sel uint8, target string, body []byte, proto string) {
		if d == nil || d.inputs >= fuzzRotate {
			if d != nil {
				d.close(t)
			}
			d = openFuzzDaemon(t)
		}
		d.inputs++

		var method string
		u := &url.URL{}
		if sel%2 == 0 {
			r := fuzzRoutes[int(sel/2)%len(fuzzRoutes)]
			method, u.Path, u.RawQuery = r.method, r.path, target
		} else {
			pu, err := url.ParseRequestURI(target)
			if err != nil {
				return // net/http would have refused it before any handler
			}
			// The shutdown request stops the daemon: that is its point.
			if strings.Contains(strings.ToLower(pu.Path), "shutdown") {
				return
			}
			method, u = fuzzMethods[int(sel/2)%len(fuzzMethods)], pu
		}
		if strings.ContainsAny(proto, "\r\n\x00") {
			return // not a header value net/http would pass on
		}
		ctx := context.Background()
		before, err := d.engine.Vars(ctx)
		if err != nil {
			t.Fatalf("engine before the request: %v", err)
		}

		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ctx = context.WithValue(ctx, peerKey{}, peerCred{UID: uint32(os.Getuid()), PID: 1})
		req := (&http.Request{Method: method, URL: u, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "whenlua", RequestURI: u.RequestURI()}).WithContext(ctx)
		if proto != "" {
			req.Header.Set(whenlua.ProtocolHeader, proto)
		}
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.handler.ServeHTTP(rec, req)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s %s hangs", method, u)
		}

		res := rec.Result()
		replyBody := rec.Body.Bytes()
		if res.Header.Get(whenlua.ProtocolHeader) != "1" {
			t.Fatalf("%s %s: reply without the protocol header", method, u)
		}
		ok := res.StatusCode/100 == 2
		switch {
		case ok && u.Path == "/v1/tail":
		case ok:
			if !json.Valid(replyBody) {
				t.Fatalf("%s %s: %d with a body that is not JSON: %q", method, u, res.StatusCode, replyBody)
			}
		case res.StatusCode/100 == 3:
			if res.Header.Get("Location") == "" {
				t.Fatalf("%s %s: redirect %d without a Location", method, u, res.StatusCode)
			}
		case res.StatusCode >= 500:
			t.Fatalf("%s %s %q: status %d: %s", method, u, body, res.StatusCode, replyBody)
		case req.RequestURI == "*" && res.StatusCode == http.StatusBadRequest:
			// net/http's ServeMux answers "*" itself, before any route.
		default:
			var eb whenlua.ErrorBody
			if err := json.Unmarshal(replyBody, &eb); err != nil || eb.Error == "" || strings.Contains(eb.Error, "\n") {
				t.Fatalf("%s %s: status %d with a bad error body %q", method, u, res.StatusCode, replyBody)
			}
			if _, known := kindStatus[eb.Kind]; !known {
				t.Fatalf("%s %s: error kind %q", method, u, eb.Kind)
			}
		}

		after, err := d.engine.Vars(context.Background())
		if err != nil {
			t.Fatalf("engine after %s %s: %v", method, u, err)
		}
		if !ok || method != "POST" || u.Path != "/v1/set" {
			if !maps.EqualFunc(before, after, whenlua.Value.Equal) && !nanOnly(before, after) {
				t.Fatalf("%s %s (status %d) changed the variables: %v -> %v", method, u, res.StatusCode, before, after)
			}
			return
		}
		// The server takes a body of exactly one JSON value.
		var sr whenlua.SetRequest
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&sr); err != nil {
			t.Fatalf("a set of a body that does not decode was accepted: %q", body)
		}
		want := maps.Clone(before)
		if sr.Mode != whenlua.ModeTest {
			whenlua.ApplyAssignments(want, sr.Assignments)
		}
		if !maps.EqualFunc(want, after, sameValue) {
			t.Fatalf("after the set %q the variables are %v, want %v", body, after, want)
		}
	})
}

// sameValue is Equal, with NaN equal to NaN.
func sameValue(a, b whenlua.Value) bool {
	if a.T == whenlua.TypeFloat && b.T == whenlua.TypeFloat && a.F != a.F && b.F != b.F {
		return true
	}
	return a.Equal(b)
}

func nanOnly(a, b map[string]whenlua.Value) bool { return maps.EqualFunc(a, b, sameValue) }
