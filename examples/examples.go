// Package examples holds realistic job files. The sample one is embedded in
// the whenlua binary and installed on a fresh home; all of them are loaded
// by `whenlua check` in the tests. It owns only the embedded files, which
// are read-only and may be read from any goroutine.
package examples

import (
	"embed"
	"errors"
	"os"
	"path/filepath"

	"github.com/whenlua/whenlua"
)

// Files holds every example job file (*.lua).
//
//go:embed *.lua
var Files embed.FS

// Sample is the job file installed as jobs/sample.lua on a fresh home.
//
//go:embed sample.lua
var Sample []byte

// InstallSample writes Sample as jobs/sample.lua when the home's jobs
// directory does not exist yet, so that a first daemon has something to
// show. A jobs directory the user emptied stays empty.
func InstallSample(p whenlua.Paths) error {
	if _, err := os.Stat(p.JobsDir); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := p.Ensure(); err != nil {
		return err
	}
	path := filepath.Join(p.JobsDir, "sample.lua")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(Sample); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
