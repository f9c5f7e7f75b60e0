package host

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/disktest"
)

func TestARunEndingWhileTheDiskIsFullIsRecordedOnceThereIsRoom(t *testing.T) {
	t.Parallel()
	disk := disktest.SmallDisk(t, "128m")
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
	filler := disktest.Fill(t, disk, 1<<20)
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
