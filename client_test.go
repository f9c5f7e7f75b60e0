package whenlua

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestErrorKindsRoundTrip(t *testing.T) {
	for _, sentinel := range []error{ErrInvalid, ErrNotFound, ErrConflict, fs.ErrPermission, ErrProtocol} {
		err := fmt.Errorf("%w: something", sentinel)
		back := RemoteError(ErrorKind(err), err.Error())
		if !errors.Is(back, sentinel) || back.Error() != err.Error() {
			t.Errorf("%v came back as %v", err, back)
		}
	}
	if back := RemoteError(ErrorKind(errors.New("disk on fire")), "disk on fire"); errors.Is(back, ErrInvalid) || back.Error() != "disk on fire" {
		t.Errorf("internal error came back as %v", back)
	}
}

// serveHTTP serves h on a unix socket in a temp directory.
func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wlc")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		os.RemoveAll(dir)
	})
	return sock
}

func TestAClientRefusesADaemonOfAnotherProtocolVersion(t *testing.T) {
	sock := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ProtocolHeader, "9")
		w.Write([]byte(`{}`))
	}))
	c := Dial(sock)
	defer c.Close()
	_, err := c.Vars(context.Background())
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "v9") {
		t.Errorf("err = %v, want a protocol mismatch naming v9", err)
	}
}

func TestAClientReportsANonJSONErrorReply(t *testing.T) {
	sock := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "teapot", http.StatusTeapot)
	}))
	c := Dial(sock)
	defer c.Close()
	_, err := c.Get(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "418") || !strings.Contains(err.Error(), "teapot") {
		t.Errorf("err = %v", err)
	}
}

func TestAClientWithoutADaemonSaysSo(t *testing.T) {
	c := Dial(filepath.Join(t.TempDir(), "none.sock"))
	defer c.Close()
	_, err := c.Ping(context.Background())
	if !errors.Is(err, ErrNoDaemon) {
		t.Errorf("err = %v, want ErrNoDaemon", err)
	}
}
