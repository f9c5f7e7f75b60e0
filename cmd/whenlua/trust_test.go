package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper process instead of running the
// tests: "listen" (an impostor on a socket path) or "request" (a raw HTTP
// request on a socket, bypassing the client's checks). The path is the last
// argument.
const helperEnv = "WHENLUA_TEST_HELPER"

// helper is a copy of the test binary that any user can run.
var helper string

// copyHelper copies the test binary into dir, which other users can read.
func copyHelper(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	helper = filepath.Join(dir, "helper")
	return copyFile(self, helper, 0o755)
}

func runHelper(mode, path string) int {
	switch mode {
	case "listen":
		return impostor(path)
	case "request":
		return rawRequest(path)
	}
	fmt.Fprintf(os.Stderr, "unknown helper %q\n", mode)
	return 2
}

// impostor listens on path, prints "ready", answers every request with a
// forged 200 and counts the bytes its peers send until its stdin ends; then
// it prints "received N".
func impostor(path string) int {
	l, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	os.Chmod(path, 0o777)
	fmt.Println("ready")
	var (
		mu    sync.Mutex
		total int64
		wg    sync.WaitGroup
	)
	done := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(done)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cr := &countReader{r: c}
				// A forged answer to whatever it was asked.
				if _, err := http.ReadRequest(bufio.NewReader(cr)); err == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
				}
				io.Copy(io.Discard, cr)
				c.Close()
				mu.Lock()
				total += cr.n
				mu.Unlock()
			}()
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	// Every client that connected has exited by now: what waits in the
	// backlog is accepted at once, then the deadline ends the loop.
	l.(*net.UnixListener).SetDeadline(time.Now())
	<-done
	wg.Wait()
	fmt.Printf("received %d\n", total)
	return 0
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// rawRequest sends GET /v1/vars on the socket at path and prints the
// response's status line.
func rawRequest(path string) int {
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/vars HTTP/1.1\r\nHost: whenlua\r\nConnection: close\r\n\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	return 0
}

// asNobody makes cmd run as uid and gid 65534.
func asNobody(cmd *exec.Cmd) {
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}

// startImpostor runs an impostor of uid 65534 on path and returns a
// function that stops it and returns how many bytes it received.
func startImpostor(t *testing.T, path string) func() string {
	t.Helper()
	cmd := exec.Command(helper, path)
	asNobody(cmd)
	cmd.Env = append(cmd.Env, helperEnv+"=listen")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rd := bufio.NewReader(out)
	if line, _ := rd.ReadString('\n'); line != "ready\n" {
		t.Fatalf("the impostor did not start: %q", line)
	}
	return func() string {
		in.Close()
		line, _ := rd.ReadString('\n')
		cmd.Wait()
		return strings.TrimSpace(line)
	}
}

// In a shared, world-writable runtime directory another user can listen
// where the client looks for its daemon: the client must send it nothing
// and say why.
func TestTheClientSendsNothingToAListenerOfAnotherUser(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to listen as another user")
	}
	shared, err := os.MkdirTemp("", "wlrt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shared)
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shared, "whenlua.sock")
	stop := startImpostor(t, sock)
	own := t.TempDir()
	client := func(args ...string) result {
		// A client that waits on the impostor fails instead of hanging.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + own, "XDG_RUNTIME_DIR=" + shared,
			"XDG_STATE_HOME=" + filepath.Join(own, "state"), "XDG_CONFIG_HOME=" + filepath.Join(own, "config")}
		return runCmd(t, cmd)
	}
	check := func(r result, args []string, want string) {
		t.Helper()
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, want) || r.stdout != "" {
			t.Errorf("whenlua %s: %v, want exit 1 and one line saying %q", strings.Join(args, " "), r, want)
		}
	}
	for _, args := range [][]string{{"set", "password=hunter2"}, {"get", "password"}, {"daemon", "stop"}} {
		check(client(args...), args, "refusing to connect to "+sock+": the socket belongs to uid 65534, not to you (uid 0)")
	}
	// A socket file of ours with another user's process listening on it.
	if err := os.Lchown(sock, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	args := []string{"set", "password=hunter2"}
	check(client(args...), args, "refusing to talk to "+sock+": the process listening there runs as uid 65534, not as you (uid 0)")
	// A symbolic link to it.
	other := filepath.Join(t.TempDir(), "rt")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sock, filepath.Join(other, "whenlua.sock")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "set", "password=hunter2")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + own, "XDG_RUNTIME_DIR=" + other,
		"XDG_STATE_HOME=" + filepath.Join(own, "state"), "XDG_CONFIG_HOME=" + filepath.Join(own, "config")}
	check(runCmd(t, cmd), args, "it is a symbolic link, not the daemon's socket")
	if got := stop(); got != "received 0" {
		t.Errorf("the impostor %s, want nothing", got)
	}
}
