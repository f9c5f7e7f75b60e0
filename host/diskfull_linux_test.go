package host

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// smallDisk mounts a tmpfs of size bytes for the test (root only).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func TestARunEndingWhileTheDiskIsFullIsRecordedOnceThereIsRoom(t *testing.T) {
	t.Parallel()
	disk := smallDisk(t, "128m")
	p := testPaths(t, filepath.Join(disk, "h"))
	gate := filepath.Join(t.TempDir(), "gate")
	writeFile(t, p.JobsDir+"/j.lua", `when("false", [[ while [ ! -e `+gate+` ]; do sleep 0.01; done; echo done ]], {name="b"})`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	ctx := context.Background()
	rec, err := te.Start(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	// Fill the disk while the job runs.
	var st syscall.Statfs_t
	if err := syscall.Statfs(disk, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(disk, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(st.Bavail)*int64(st.Bsize)-(1<<20)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := te.Set(ctx, whenlua.SetRequest{Assignments: []whenlua.Assignment{{Name: "a", Value: whenlua.Int(1)}}}); err == nil {
		t.Fatal("a set on the full disk succeeded")
	}
	writeFile(t, gate, "")
	te.waitIdle() // the run ended; its record could not be committed
	os.Remove(filler)
	// The engine retries on its own, without any request.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := te.store.Run(rec.Serial)
		if err == nil && r.State == whenlua.RunDone {
			if string(r.Output) != "done\n" || r.Code != 0 {
				t.Fatalf("recorded run = %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d never recorded as done: %+v %v", rec.Serial, r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
