package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// tourHeading starts the README section whose shell blocks are the tour.
const tourHeading = "## A five-minute tour"

// tourScript returns the ```sh blocks of the README's tour section, in
// order, joined as one script.
func tourScript(readme string) (string, int) {
	_, section, ok := strings.Cut(readme, "\n"+tourHeading+"\n")
	if !ok {
		return "", 0
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var blocks []string
	for {
		_, rest, ok := strings.Cut(section, "\n```sh\n")
		if !ok {
			break
		}
		block, after, ok := strings.Cut(rest, "\n```\n")
		if !ok {
			break
		}
		blocks = append(blocks, block+"\n")
		section = after
	}
	return strings.Join(blocks, ""), len(blocks)
}

// TestTheREADMETourRunsAsWritten runs the README's tour with bash, exactly
// as written, `set -euo pipefail`, the freshly built binary first on PATH
// as whenlua: any failing command fails the test.
func TestTheREADMETourRunsAsWritten(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, n := tourScript(string(readme))
	if n < 3 {
		t.Fatalf("README.md has %d sh blocks under %q, want the tour", n, tourHeading)
	}
	// A short TMPDIR: the tour's home comes from mktemp -d, and its socket
	// path must stay under 108 bytes.
	tmp, err := os.MkdirTemp("", "wlt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killDaemonsUnder(t, tmp) // a tour that failed half-way left one
		os.RemoveAll(tmp)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", "set -euo pipefail\n"+script)
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case whenlua.EnvHome, "PATH", "TMPDIR", "BASH_ENV", "ENV":
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+tmp)
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("the tour took %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("the README tour failed: %v\n--- output ---\n%s", err, out.String())
	}
	// Spot checks that the tour showed what its comments say.
	for _, want := range []string{"hello, psst", "disk-alert", "building 4f2a9c1", "job build post"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the tour's output does not show %q:\n%s", want, out.String())
		}
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("the tour left %d entries in its TMPDIR (the home is not removed)", len(entries))
	}
}

// killDaemonsUnder SIGKILLs the daemon of every home found under dir.
func killDaemonsUnder(t *testing.T, dir string) {
	socks, _ := filepath.Glob(filepath.Join(dir, "*", "whenlua.sock"))
	for _, sock := range socks {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c := whenlua.Dial(sock)
		p, err := c.Ping(ctx)
		c.Close()
		cancel()
		if err == nil {
			killAndWait(t, p.PID)
		}
	}
}

func TestTourScriptTakesTheShellBlocksOfTheTourSectionOnly(t *testing.T) {
	t.Parallel()
	readme := "# x\n\n```sh\nbefore\n```\n\n" + tourHeading + "\n\ntext\n\n```sh\none\n```\n\n```lua\nnot sh\n```\n\n```sh\ntwo\nthree\n```\n\n## Next\n\n```sh\nafter\n```\n"
	script, n := tourScript(readme)
	if n != 2 || script != "one\ntwo\nthree\n" {
		t.Fatalf("tourScript = %q, %d blocks", script, n)
	}
}
