package persist

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// BaselineAppendFsync measures the raw cost a durable commit is compared
// with: n appends of 128 bytes to a fresh file in dir, each followed by an
// fsync. It returns the mean time per append and removes the file.
func BaselineAppendFsync(dir string, n int) (perOp time.Duration, err error) {
	if n <= 0 {
		return 0, errors.New("baseline: n must be positive")
	}
	f, err := os.CreateTemp(dir, "baseline-*.dat")
	if err != nil {
		return 0, fmt.Errorf("baseline: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("baseline: %w", cerr)
		}
		os.Remove(f.Name())
	}()
	buf := make([]byte, 128)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	start := time.Now()
	for range n {
		if _, err := f.Write(buf); err != nil {
			return 0, fmt.Errorf("baseline: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("baseline: %w", err)
		}
	}
	return time.Since(start) / time.Duration(n), nil
}
