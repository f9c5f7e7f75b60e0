package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A string value that is not valid UTF-8 is stored and handed on byte for
// byte: to `get`, to a job's environment, and across a restart.
func TestAValueIsStoredAndHandedToJobsByteForByte(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	fifo := filepath.Join(h.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opened read-write so that the job's open does not wait for a reader.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h.writeJob("bytes.lua", fmt.Sprintf(`when("changes('u')", [[ printf '%%s' "$u" > %s ]], {name = "show"})`, fifo))
	h.start()
	raw := "\xff\xfeA"
	h.ok("set", "u="+raw)
	f.SetReadDeadline(time.Now().Add(time.Minute))
	got := make([]byte, len(raw))
	if _, err := io.ReadFull(f, got); err != nil || string(got) != raw {
		t.Errorf("the job's environment has u=%q (%v), want %q", got, err, raw)
	}
	check := func() {
		t.Helper()
		if out := h.ok("get", "u"); out != raw+"\n" {
			t.Errorf("get u = %q, want %q", out, raw+"\n")
		}
		if out := h.ok("get", "--json", "u"); !strings.Contains(out, `"base64": "//5B"`) {
			t.Errorf("get --json u = %q, want the bytes in base64", out)
		}
		if out := h.ok("vars"); out != `u="\xff\xfeA"`+"\n" {
			t.Errorf("vars = %q", out)
		}
	}
	check()
	h.ok("daemon", "stop")
	h.start()
	check()
}

// rawSet posts body to the daemon's /v1/set and returns the status and
// body of the reply.
func rawSet(t *testing.T, h *home, body string) (int, string) {
	t.Helper()
	sock := filepath.Join(h.dir, "whenlua.sock")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post("http://whenlua/v1/set", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTheDaemonSetsTheOriginOfAClientsSet(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	code, body := rawSet(t, h, `{"mode":"set","origin":"job evil post","assignments":[{"name":"x","value":{"type":"int","value":1}}]}`)
	if code != http.StatusOK {
		t.Fatalf("raw set: %d %s", code, body)
	}
	code, body = rawSet(t, h, `{"mode":"whisper","origin":"load of file /etc/passwd","assignments":[{"name":"x","value":{"type":"int","value":2}}]}`)
	if code != http.StatusOK {
		t.Fatalf("raw whisper: %d %s", code, body)
	}
	out := h.ok("history", "x")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "\twhisper\t2") || !strings.Contains(lines[1], "\tcli\t1") {
		t.Errorf("history x:\n%s\nwant the origins whisper and cli", out)
	}
}

// A set the store could not take in one transaction is refused at the
// boundary as invalid, with a message saying what to do; NaN and the
// infinities are refused as well. Nothing is stored.
func TestOversizedSetsAndNonFiniteFloatsAreInvalid(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	many := []string{"set"}
	for i := range 10000 {
		many = append(many, fmt.Sprintf("v%d=1", i))
	}
	h.fails(1, many, "10000 assignments in one set, more than 1000: split them into several sets")
	big := []string{"set"}
	for i := range 5 {
		big = append(big, fmt.Sprintf("b%d=%s", i, strings.Repeat("a", 60000)))
	}
	h.fails(1, big, "bytes of names and values in one set, more than 262144")
	for _, v := range []string{"nan", "NaN", "inf", "-Inf", "+infinity"} {
		h.fails(1, []string{"set", "--type", "float", "f=" + v}, "is not a finite float")
	}
	code, body := rawSet(t, h, `{"mode":"set","assignments":[{"name":"f","value":{"type":"float","value":"NaN"}}]}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"kind":"invalid"`) || !strings.Contains(body, "only finite floats are stored") {
		t.Errorf("raw set of NaN: %d %s", code, body)
	}
	if out := h.ok("vars"); out != "" {
		t.Errorf("refused sets stored %q", out)
	}
	// The largest set allowed goes through.
	h.ok(many[:1001]...)
	if out := h.ok("vars"); strings.Count(out, "\n") != 1000 {
		t.Errorf("a set of 1000 stored %d variables", strings.Count(out, "\n"))
	}
}
