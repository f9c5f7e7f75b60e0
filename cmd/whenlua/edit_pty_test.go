//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// On a terminal, an edit that does not load asks whether to edit again;
// the second attempt is installed.
func TestEditOnATerminalAsksToEditAgain(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", helloJob)
	h.start()
	count := filepath.Join(t.TempDir(), "count")
	// First run: break the file; second run: fix it differently.
	ed := editor(t, `if [ -e `+count+` ]; then
  printf 'when("x == 3", "true", { name = "hello" })\n' > "$1"
else
  touch `+count+`
  printf 'when("x == 3", "true", { name = "hello" }\n' > "$1"
fi`)
	for _, answer := range []string{"n", ""} {
		os.Remove(count)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		p := openPTY(t)
		cmd := h.command(ctx, "edit", "demo")
		cmd.Env = append(cmd.Env, "VISUAL="+ed, "TMPDIR="+t.TempDir())
		p.start(cmd)
		p.expect("syntax error")
		p.expect("edit again? [Y/n] ")
		p.typ(answer + "\r")
		err := cmd.Wait()
		cancel()
		if answer == "n" {
			p.expect("kept at ")
			if err == nil || h.readJob("demo.lua") != helloJob {
				t.Errorf("answer n: %v, file %q", err, h.readJob("demo.lua"))
			}
			continue
		}
		p.expect("active, generation 2")
		if err != nil || !strings.Contains(h.readJob("demo.lua"), "x == 3") {
			t.Errorf("answer yes: %v, file %q", err, h.readJob("demo.lua"))
		}
	}
}
