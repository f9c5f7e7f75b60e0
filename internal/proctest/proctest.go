// Package proctest starts the processes tests of process control need: a
// shell that ignores SIGTERM, as a stray or orphaned job script may.
package proctest

import (
	"os/exec"
	"syscall"
	"testing"
)

// Stubborn starts a shell that ignores SIGTERM and sleeps, in dir (""
// for this one) with env and attr, and returns it once it runs. The
// caller waits for it.
func Stubborn(t testing.TB, dir string, env []string, attr *syscall.SysProcAttr) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 1000")
	cmd.Dir, cmd.Env, cmd.SysProcAttr = dir, env, attr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Read(make([]byte, 6)); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	return cmd
}
