//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal opened through /dev/ptmx; the test reads what
// the program writes to it and types into it.
type pty struct {
	t      *testing.T
	master *os.File
	slave  *os.File

	mu   sync.Mutex
	out  bytes.Buffer
	seen int // offset in out up to which expect has consumed
	done chan struct{}
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty slave: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 200}); err != nil {
		t.Fatalf("window size: %v", err)
	}
	p := &pty{t: t, master: m, slave: s, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return // EIO once the last slave is closed
			}
		}
	}()
	t.Cleanup(func() {
		s.Close()
		m.Close()
		<-p.done
	})
	return p
}

// start runs cmd on the terminal as its controlling terminal.
func (p *pty) start(cmd *exec.Cmd) {
	p.t.Helper()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pty) typ(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		p.t.Fatalf("type %q: %v", s, err)
	}
}

// expect waits until want appears in the output after what earlier
// expects consumed, and consumes up to its end.
func (p *pty) expect(want string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		rest := p.out.String()[p.seen:]
		if i := strings.Index(rest, want); i >= 0 {
			p.seen += i + len(want)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			p.t.Fatalf("terminal never showed %q; after the last match it shows %q", want, rest)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const keyUp = "\x1b[A"

func TestReplOnATerminalEditsRecallsAndKeepsHistory(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", `when("x == 1", "true", { name = "hello" })`+"\n")
	h.start()
	h.ok("set", "--type", "int", "x=20")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	session := func() (*pty, *exec.Cmd) {
		p := openPTY(t)
		cmd := h.command(ctx, "repl")
		p.start(cmd)
		p.expect("help() lists what you can do")
		p.expect("> ")
		return p, cmd
	}
	p, cmd := session()
	p.typ("x * 2 + 2\r")
	p.expect("42\r\n")
	p.expect("> ")
	// Up recalls the line; Enter runs it again.
	p.typ(keyUp)
	p.expect("x * 2 + 2")
	p.typ("\r")
	p.expect("42\r\n")
	p.expect("> ")
	// Editing: Left twice, then insert a character.
	p.typ("'ac'\x1b[D\x1b[Db\r")
	p.expect("abc\r\n")
	// A syntax error does not end the session.
	p.typ("1 +* 2\r")
	p.expect("stdin:1: syntax error")
	p.expect("> ")
	// An unfinished chunk asks for more.
	p.typ("if x > 10 then\r")
	p.expect(">> ")
	p.typ("print('in block')\r")
	p.expect(">> ")
	p.typ("end\r")
	p.expect("in block\r\n")
	// Ctrl-C drops a line being typed.
	p.typ("this is not lua")
	p.typ("\x03")
	p.expect("> ")
	p.typ("test{x = 1}\r")
	p.expect("hello\r\n")
	p.expect("> ")
	p.typ("\x04") // Ctrl-D on an empty line quits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("repl exited with %v", err)
	}

	histPath := filepath.Join(h.dir, "state", "repl_history")
	fi, err := os.Stat(histPath)
	if err != nil {
		t.Fatalf("history file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("history file mode %v, want 0600", fi.Mode().Perm())
	}
	hist, _ := os.ReadFile(histPath)
	want := "x * 2 + 2\n'abc'\n1 +* 2\nif x > 10 then\nprint('in block')\nend\ntest{x = 1}\n"
	if string(hist) != want {
		t.Errorf("history file:\n%s\nwant:\n%s", hist, want)
	}

	// The next session recalls the previous one's lines.
	p, cmd = session()
	p.typ(keyUp + keyUp + keyUp + keyUp + "\r")
	p.expect("if x > 10 then")
	p.expect(">> ")
	p.typ("print('again')\rend\r")
	p.expect("again\r\n")
	p.expect("> ")
	p.typ("\x04")
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		t.Errorf("second session exited with %v", err)
	}
}
