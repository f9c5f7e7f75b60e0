package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// helloSource is the baseline of P8: the smallest Go program that writes
// a line, so that the row compares whenlua's start with Go's own.
const helloSource = `package main

import "os"

func main() { os.Stdout.WriteString("hello\n") }
`

// benchCLI is P8: the wall time of `whenlua set x=N` typed in a shell,
// start to exit, against a trivial Go program's, the two alternating in one
// run. The set goes to a daemon with no job file.
func benchCLI(ctx context.Context, b *bench, cfg config) ([]row, error) {
	hello, err := buildHello(ctx, b.root)
	if err != nil {
		return nil, err
	}
	p, err := b.home("p8")
	if err != nil {
		return nil, err
	}
	if _, err := b.start(ctx, p); err != nil {
		return nil, err
	}
	env := b.env(p)
	timed := func(name string, args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(t0)
		if err != nil {
			return 0, fmt.Errorf("%s %v: %w: %s", filepath.Base(name), args, err, out)
		}
		return d, nil
	}
	var got, base []time.Duration
	warmup := 5
	for i := range cfg.startIters + warmup {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var set, hi time.Duration
		if i%2 == 0 {
			if set, err = timed(b.bin, "set", fmt.Sprintf("x=%d", i)); err == nil {
				hi, err = timed(hello)
			}
		} else {
			if hi, err = timed(hello); err == nil {
				set, err = timed(b.bin, "set", fmt.Sprintf("x=%d", i))
			}
		}
		if err != nil {
			return nil, err
		}
		if i >= warmup {
			got, base = append(got, set), append(base, hi)
		}
	}
	return []row{latencyRow("P8", "`whenlua set x=N` wall time", "Go hello", got, base)}, nil
}

// buildHello builds the baseline program in dir and returns its path.
func buildHello(ctx context.Context, dir string) (string, error) {
	src := filepath.Join(dir, "hello")
	if err := os.MkdirAll(src, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.21\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(helloSource), 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(src, "hello")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the hello-world baseline: %w: %s", err, out)
	}
	return bin, nil
}
