package luaapi

import (
	"path/filepath"
	"sync"

	"github.com/whenlua/whenlua"
)

// Check loads the job file at path on its own, as `whenlua check` does: no
// daemon, an in-memory Host, LibDir = dir(path)/lib. It compiles, runs the
// top level, validates the jobs and runs on_load, then closes the state.
// Errors are *LoadError (or *CallError from on_load); a file that cannot be
// read gives the os error.
func Check(path string) error {
	src, err := ReadSource(path)
	if err != nil {
		return err
	}
	f, err := CheckSource(path, src, filepath.Join(filepath.Dir(path), "lib"))
	if err != nil {
		return err
	}
	f.Close()
	return nil
}

// CheckSource is Check on src, the content of path, with its requires
// from libDir; it returns the loaded File for the caller to look at and
// close.
func CheckSource(path string, src []byte, libDir string) (*File, error) {
	proto, err := Compile(path, src)
	if err != nil {
		return nil, err
	}
	f, err := Load(path, src, proto, Options{LibDir: libDir, Host: newMemHost(), Timeout: checkTimeout})
	if err != nil {
		return nil, err
	}
	if err := f.CallOnLoad(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkTimeout is the time limit Check uses (tests shorten it).
var checkTimeout = DefaultTimeout

// memHost is a Host that keeps variables in memory and drops logs and mail.
type memHost struct {
	mu   sync.Mutex
	vars map[string]whenlua.Value
}

func newMemHost() *memHost { return &memHost{vars: map[string]whenlua.Value{}} }

func (h *memHost) Get(name string) whenlua.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.vars[name]
}

func (h *memHost) Set(_ string, as []whenlua.Assignment, _ bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	whenlua.ApplyAssignments(h.vars, as)
	return nil
}

func (h *memHost) Log(string, string)      {}
func (h *memHost) Running() []whenlua.Run  { return nil }
func (h *memHost) SendMail(string, []byte) {}
