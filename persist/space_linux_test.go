package persist

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/whenlua/whenlua"
)

// Badger's logs are sparse memory-mapped files: writing into them on a full
// disk kills the process with SIGBUS (tried: the commit loop below dies at
// once without the check). The store refuses the commit instead, and takes
// commits again once there is room.
func TestAFullDiskRefusesCommitsUntilThereIsRoom(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root")
	}
	disk := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", disk).Run() })
	s := openTest(t, Options{Dir: filepath.Join(disk, "db")})
	var st unix.Statfs_t
	if err := unix.Statfs(disk, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(disk, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(st.Bavail)*int64(st.Bsize)-(64<<10)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	set := func(i int) error {
		return s.Commit(&Batch{Vars: []VarChange{{Name: "x", Value: whenlua.String(fmt.Sprint(i)), Origin: "test"}}})
	}
	for i := range 1000 {
		if err := set(i); err != nil {
			if !errors.Is(err, ErrDiskFull) {
				t.Fatalf("commit %d: %v, want disk full", i, err)
			}
			break
		}
		if i == 999 {
			t.Fatal("1,000 commits on a full disk succeeded")
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := set(1000); err != nil {
		t.Fatalf("commit once there is room: %v", err)
	}
	s = reopen(t, s)
	if vars, err := s.Vars(); err != nil || vars["x"].S != "1000" {
		t.Fatalf("after reopen: %v, %v", vars, err)
	}
}
