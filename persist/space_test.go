package persist

import (
	"testing"
	"time"
)

// A reading of ample free space stands in for statfs for a few
// milliseconds and a bounded number of bytes, no longer.
func TestAnAmpleFreeSpaceReadingIsTrustedBriefly(t *testing.T) {
	var r roomy
	if r.take(1) {
		t.Fatal("trusted before any reading")
	}
	r.trust()
	if !r.take(roomyBytes / 2) {
		t.Fatal("a fresh reading is not trusted")
	}
	if r.take(roomyBytes/2 + 1) {
		t.Fatal("trusted for more than roomyBytes")
	}
	if !r.take(roomyBytes / 2) {
		t.Fatal("the rest of the allowance is not trusted")
	}
	r.trust()
	time.Sleep(2 * roomyFor)
	if r.take(1) {
		t.Fatal("trusted after its window")
	}
}

// The store checks its filesystem and then trusts the reading: on a
// filesystem with room, commits go on; the disk-full path is tested on a
// small tmpfs (host/diskfull_test.go), where no reading is ample.
func TestCheckSpaceTrustsAnAmpleReading(t *testing.T) {
	s := openTest(t, Options{})
	free, err := freeBytes(s.opts.Dir)
	if err != nil || free < spaceComfort {
		t.Skipf("the test directory has %d bytes free (%v)", free, err)
	}
	if err := s.checkSpace(100); err != nil {
		t.Fatal(err)
	}
	if !s.roomy.take(1) {
		t.Fatal("an ample reading was not kept")
	}
}
