package runner

import (
	"os/exec"
	"testing"
)

// BenchmarkStartTrue measures a whole run of `true`: directory, script
// file, process, output capture, done, cleanup. Compare with
// BenchmarkExecShTrue, a bare `sh -c true`:
//
//	go test -run '^$' -bench 'True$' -count 5 ./host/runner/
func BenchmarkStartTrue(b *testing.B) {
	r := New(Options{BaseDir: b.TempDir()})
	defer r.Close(b.Context())
	results := make(chan Result, 1)
	done := func(res Result) { results <- res }
	for b.Loop() {
		p, err := r.Start(Spec{Shell: "/bin/sh", Script: "true"}, done)
		if err != nil {
			b.Fatal(err)
		}
		if res := <-results; res.Code != 0 {
			b.Fatalf("code %d", res.Code)
		}
		if err := p.Cleanup(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExecShTrue(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("sh", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
