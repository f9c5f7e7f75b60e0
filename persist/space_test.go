package persist

import (
	"testing"
	"time"
)

// A reading of ample free space stands in for statfs for a few
// milliseconds and a bounded number of bytes, no longer.
func TestAnAmpleFreeSpaceReadingIsTrustedBriefly(t *testing.T) {
	var r roomy
	t0 := time.Unix(1000, 0)
	if r.take(1, t0) {
		t.Fatal("trusted before any reading")
	}
	r.trust(t0)
	if !r.take(roomyBytes/2, t0.Add(roomyFor/2)) {
		t.Fatal("a fresh reading is not trusted")
	}
	if r.take(roomyBytes/2+1, t0.Add(roomyFor/2)) {
		t.Fatal("trusted for more than roomyBytes")
	}
	if !r.take(roomyBytes/2, t0.Add(roomyFor/2)) {
		t.Fatal("the rest of the allowance is not trusted")
	}
	r.trust(t0.Add(roomyFor))
	if r.take(1, t0.Add(2*roomyFor)) {
		t.Fatal("trusted after its window")
	}
}

// Concurrent commits read the free space at once: a reading that was not
// ample closes the window, and an older ample reading that comes back
// after a newer one does not reopen or extend it.
func TestAnOlderReadingNeverOverridesANewerOne(t *testing.T) {
	var r roomy
	t0 := time.Unix(1000, 0)
	r.trust(t0)
	r.distrust(t0.Add(time.Millisecond))  // a newer reading found little room
	r.trust(t0.Add(time.Millisecond / 2)) // an older ample reading returns late
	if r.take(1, t0.Add(2*time.Millisecond)) {
		t.Fatal("an older ample reading reopened the window a newer low one closed")
	}
	r.trust(t0.Add(3 * time.Millisecond))
	r.trust(t0.Add(2 * time.Millisecond)) // older: must not move the window back
	if !r.take(1, t0.Add(3*time.Millisecond+roomyFor-time.Microsecond)) {
		t.Fatal("an older reading shortened the window of a newer one")
	}
	r.distrust(t0) // a low reading, however old, closes the window
	if r.take(1, t0.Add(4*time.Millisecond)) {
		t.Fatal("trusted after a low reading")
	}
}

// The store checks its filesystem and then trusts the reading: on a
// filesystem with room, commits go on; the disk-full path is tested on a
// small tmpfs (host/diskfull_test.go, cmd/whenlua/reliability_test.go),
// where no reading is ample.
func TestCheckSpaceTrustsAnAmpleReading(t *testing.T) {
	s := openTest(t, Options{})
	free, err := freeBytes(s.opts.Dir)
	if err != nil || free < spaceComfort {
		t.Skipf("the test directory has %d bytes free (%v)", free, err)
	}
	asked := time.Now()
	if err := s.checkSpace(100); err != nil {
		t.Fatal(err)
	}
	if !s.roomy.take(1, asked) {
		t.Fatal("an ample reading was not kept")
	}
}
