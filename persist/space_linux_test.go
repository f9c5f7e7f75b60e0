package persist

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/disktest"
)

// Badger's logs are sparse memory-mapped files: writing into them on a full
// disk kills the process with SIGBUS (tried: the commit loop below dies at
// once without the check). The store refuses the commit instead, and takes
// commits again once there is room.
func TestAFullDiskRefusesCommitsUntilThereIsRoom(t *testing.T) {
	disk := disktest.SmallDisk(t, "64m")
	s := openTest(t, Options{Dir: filepath.Join(disk, "db")})
	filler := disktest.Fill(t, disk, 64<<10)
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
