package runner

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

func TestOutputCaps(t *testing.T) {
	m := func(n int64) string { return string(marker(n)) }
	tests := []struct {
		name      string
		total     int
		storedCap int
		file      string
		stored    string
	}{
		{"short output is kept whole", 5, 100, "01234", "01234"},
		{"output within head and tail caps is kept whole", 16, 100, alphabet[:16], alphabet[:16]},
		{"long output keeps head, marker and tail", 36, 100,
			"0123456789" + m(20) + "uvwxyz", "0123456789" + m(20) + "uvwxyz"},
		{"stored output keeps halves of what fits beside the marker", 36, 34,
			"0123456789" + m(20) + "uvwxyz", "012" + m(30) + "xyz"},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 7, 64} {
			t.Run(tt.name, func(t *testing.T) {
				o := testOutput(t)
				data := []byte(alphabet[:tt.total])
				for len(data) > 0 {
					n := min(chunk, len(data))
					o.write(data[:n])
					data = data[n:]
				}
				stored, size := o.finish(tt.storedCap)
				if size != int64(tt.total) {
					t.Errorf("size = %d, want %d", size, tt.total)
				}
				if string(stored) != tt.stored {
					t.Errorf("stored = %q, want %q", stored, tt.stored)
				}
				if len(stored) > tt.storedCap {
					t.Errorf("stored is %d bytes, more than the cap %d", len(stored), tt.storedCap)
				}
				file, err := os.ReadFile(o.file.Name())
				if err != nil {
					t.Fatal(err)
				}
				if string(file) != tt.file {
					t.Errorf("file = %q, want %q", file, tt.file)
				}
				var tail bytes.Buffer
				if err := o.follow(context.Background(), &tail); err != nil {
					t.Fatal(err)
				}
				if tail.String() != tt.file {
					t.Errorf("follow wrote %q, want %q", tail.String(), tt.file)
				}
			})
		}
	}
}

func TestFollowerThatFellBehindSkipsWithMarker(t *testing.T) {
	o := testOutput(t)
	o.write([]byte(alphabet[:12]))
	var w bytes.Buffer
	// The follower reads the head, then the job writes past the ring.
	first := make(chan struct{})
	fw := writerFunc(func(b []byte) (int, error) {
		if w.Len() == 0 {
			defer close(first)
		}
		return w.Write(b)
	})
	errc := make(chan error, 1)
	go func() { errc <- o.follow(context.Background(), fw) }()
	<-first
	o.write([]byte(alphabet[12:]))
	o.finish(100)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Whatever it saw of the ring before the skip, it ends with the last
	// tail bytes and says what it left out.
	got := w.String()
	if !bytes.HasPrefix([]byte(got), []byte("0123456789")) || !bytes.HasSuffix([]byte(got), []byte("uvwxyz")) ||
		!bytes.Contains([]byte(got), []byte("bytes omitted")) {
		t.Errorf("follow wrote %q", got)
	}
}

func TestStoredOutputOfWholeFileLongerThanCap(t *testing.T) {
	o := testOutput(t)
	o.headCap, o.tailCap = 100, 100
	data := bytes.Repeat([]byte(alphabet), 5)[:150]
	o.write(data)
	stored, _ := o.finish(38)
	want := string(data[:4]) + string(marker(141)) + string(data[145:])
	if string(stored) != want {
		t.Errorf("stored = %q, want %q", stored, want)
	}
	if len(stored) > 38 {
		t.Errorf("stored is %d bytes, more than the cap", len(stored))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func testOutput(t *testing.T) *output {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), OutputName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	o := newOutput(f, 10, 6, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { o.close() })
	return o
}
