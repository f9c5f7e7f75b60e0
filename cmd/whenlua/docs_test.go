package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestTheCommittedCLIReferenceMatchesTheCommandDefinitions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		gen  func() (string, error)
	}{
		{"cli.md", referenceMarkdown},
		{"whenlua.1", referenceMan},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want, err := tc.gen()
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join("..", "..", "docs", tc.file))
			if err != nil {
				t.Fatalf("%v; create it with: go generate ./cmd/whenlua", err)
			}
			if string(got) != want {
				t.Errorf("docs/%s is out of date with the command definitions; refresh it with: go generate ./cmd/whenlua", tc.file)
			}
		})
	}
}

func TestTheCLIReferenceDocumentsEveryVisibleCommandButNotTheHiddenOnes(t *testing.T) {
	t.Parallel()
	md, err := referenceMarkdown()
	if err != nil {
		t.Fatal(err)
	}
	app := newApp(&env{})
	for _, cmd := range app.Commands {
		heading := "\n## " + cmd.Name + "\n"
		if cmd.Hidden {
			if strings.Contains(md, heading) {
				t.Errorf("hidden command %s is documented", cmd.Name)
			}
			continue
		}
		if !strings.Contains(md, heading) {
			t.Errorf("command %s is missing from the reference", cmd.Name)
		}
	}
	for _, want := range []string{">whenlua history [-n N] [--json] NAME", ">whenlua set [--type string|int|float|bool] NAME=VALUE ...", "(default: 20)",
		"# SYNOPSIS\n\n```\nwhenlua [--home DIR] COMMAND", "**--home** DIR: put jobs, state and socket under DIR", "**--file, -f** FILE: load job FILE"} {
		if !strings.Contains(md, want) {
			t.Errorf("the reference does not say %q", want)
		}
	}
	// Every flag that takes a value is written with its placeholder.
	if i := strings.Index(md, `**=""`); i >= 0 {
		t.Errorf("a flag without its placeholder: %q", md[max(0, i-30):min(len(md), i+50)])
	}
	// And so in the man page.
	man, err := referenceMan()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".SH SYNOPSIS\n.EX\nwhenlua [--home DIR] COMMAND", `\fB--home\fP \fIDIR\fR: put jobs, state and socket under \fIDIR\fR`} {
		if !strings.Contains(man, want) {
			t.Errorf("the man page does not say %q", want)
		}
	}
	if i := strings.Index(man, `\fP=""`); i >= 0 {
		t.Errorf("a flag without its placeholder in the man page: %q", man[max(0, i-30):min(len(man), i+50)])
	}
}

func TestDocsCommandPrintsOrWritesEachFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, format := range []string{"markdown", "man"} {
		out := filepath.Join(dir, format)
		if r := runCmd(t, execBin("docs", format, "-o", out)); r.code != 0 || r.stdout != "" {
			t.Fatalf("docs %s -o FILE: %v", format, r)
		}
		written, _ := os.ReadFile(out)
		r := runCmd(t, execBin("docs", format))
		if r.code != 0 || r.stdout != string(written) || len(written) == 0 {
			t.Errorf("docs %s printed %d bytes, wrote %d: %v", format, len(r.stdout), len(written), r.code)
		}
	}
	if r := runCmd(t, execBin("docs", "pdf")); r.code != 2 {
		t.Errorf("docs pdf: %v, want exit 2", r)
	}
	if r := runCmd(t, execBin("help")); strings.Contains(r.stdout, "   docs ") || r.code != 0 {
		t.Errorf("help lists the hidden docs command:\n%s", r.stdout)
	}
}

// execBin is the built binary with args, in the test's environment.
func execBin(args ...string) *exec.Cmd { return exec.Command(bin, args...) }
