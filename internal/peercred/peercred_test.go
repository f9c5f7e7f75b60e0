package peercred

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestBothEndsOfAConnectionSeeThisProcess(t *testing.T) {
	dir, err := os.MkdirTemp("", "pc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for name, c := range map[string]net.Conn{"client": client, "server": server} {
		cred, err := Of(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int(cred.UID) != os.Getuid() {
			t.Errorf("%s: uid %d, want %d", name, cred.UID, os.Getuid())
		}
		if runtime.GOOS != "freebsd" && int(cred.PID) != os.Getpid() {
			t.Errorf("%s: pid %d, want %d", name, cred.PID, os.Getpid())
		}
	}
}

func TestAConnectionThatIsNotASocketHasNoCredentials(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := Of(a); err == nil {
		t.Error("a pipe has peer credentials")
	}
}
