package rawconn

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a real unix socket connection, each wrapped.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := Listener{l}.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client = Wrap(c)
	server = <-accepted
	if server == nil {
		t.FailNow()
	}
	for _, c := range []net.Conn{client, server} {
		if _, ok := c.(*Conn); !ok {
			t.Fatalf("%T is not wrapped", c)
		}
		t.Cleanup(func() { c.Close() })
	}
	return client, server
}

func TestAWriteLargerThanTheSocketBufferArrivesWhole(t *testing.T) {
	a, b := pair(t)
	data := make([]byte, 8<<20)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		n, err := a.Write(data)
		if err == nil && n != len(data) {
			err = io.ErrShortWrite
		}
		errc <- err
	}()
	got := make([]byte, 0, len(data))
	buf := make([]byte, 3000) // small reads: the writer waits for room many times
	for len(got) < len(data) {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the bytes read differ from the bytes written")
	}
}

func TestAReadPastItsDeadlineTimesOut(t *testing.T) {
	_, b := pair(t)
	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := b.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read: %v is not a net.Error with Timeout()", err)
	}
	// A deadline moved into the past interrupts a read in progress
	// (net/http's server ends its background read that way).
	b.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	b.SetReadDeadline(time.Unix(1, 0))
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
}

func TestClosingAConnectionEndsItsBlockedRead(t *testing.T) {
	_, b := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read: %v, want net.ErrClosed", err)
	}
}

func TestThePeersCloseIsEOFForReadsAndEPIPEForWrites(t *testing.T) {
	a, b := pair(t)
	if _, err := a.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "last" {
		t.Fatalf("read %q, %v; want \"last\" and EOF", got, err)
	}
	_, err = b.Write([]byte("x"))
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write to a closed peer: %v, want EPIPE or ECONNRESET", err)
	}
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "write" {
		t.Fatalf("write error %v does not name its system call", err)
	}
}

func TestOnlyUnixConnectionsAreWrapped(t *testing.T) {
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if Wrap(p) != p {
		t.Fatal("a net.Pipe was wrapped")
	}
}

// Two Writes at once are not interleaved, as with net.Conn: each holds the
// connection until all of it is written.
func TestConcurrentWritesDoNotInterleave(t *testing.T) {
	a, b := pair(t)
	const size = 4 << 20
	errc := make(chan error, 2)
	for _, c := range []byte{'x', 'y'} {
		go func() {
			_, err := a.Write(bytes.Repeat([]byte{c}, size))
			errc <- err
		}()
	}
	got := make([]byte, 0, 2*size)
	buf := make([]byte, 64<<10)
	for len(got) < 2*size {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	first, second := got[:size], got[size:]
	if bytes.Count(first, first[:1]) != size || bytes.Count(second, second[:1]) != size || first[0] == second[0] {
		t.Fatal("the two writes were interleaved")
	}
}

// An error names the operation once, as net.Conn's do.
func TestErrorsReadLikeNetConnErrors(t *testing.T) {
	_, b := pair(t)
	b.Close()
	_, err := b.Read(make([]byte, 1))
	if err == nil || strings.Contains(err.Error(), "raw-") || strings.Count(err.Error(), "read") != 1 {
		t.Fatalf("read on a closed connection: %q", err)
	}
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v is not net.ErrClosed", err)
	}
}
