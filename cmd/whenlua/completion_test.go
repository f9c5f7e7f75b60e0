package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// complete runs the binary's completion protocol for the words and returns
// the lines it printed; it requires exit 0 and nothing on stderr.
func (h *home) complete(words ...string) []string {
	h.t.Helper()
	r := h.run(append(words, completeFlag)...)
	if r.code != 0 || r.stderr != "" {
		h.t.Fatalf("whenlua %s %s: %v", strings.Join(words, " "), completeFlag, r)
	}
	return strings.Fields(r.stdout)
}

func hasAll(got []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

func TestCompletionOffersTheDaemonsVariablesJobsAndSerials(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", `
when("changes('greeting')", [[ echo "hello, $greeting" ]], { name = "greet" })
every("1 year", [[ sleep 60 ]], { name = "slow" })
`)
	h.start()
	h.ok("set", "greeting=world", "--type", "int", "load=3")

	for _, cmd := range []string{"get", "history", "unset"} {
		if got := h.complete(cmd); !slices.Equal(got, []string{"greeting", "load"}) {
			t.Errorf("%s offers %q, want the variables", cmd, got)
		}
	}
	for _, cmd := range []string{"set", "whisper", "test"} {
		if got := h.complete(cmd); !slices.Equal(got, []string{"greeting=", "load="}) {
			t.Errorf("%s offers %q, want NAME= for each variable", cmd, got)
		}
		// After --type and its value, and after other pairs, still the names.
		if got := h.complete(cmd, "--type", "int", "load=4"); !hasAll(got, "greeting=", "load=") {
			t.Errorf("%s --type int load=4 offers %q", cmd, got)
		}
	}
	for _, cmd := range []string{"start", "log", "next", "why"} {
		if got := h.complete(cmd); !slices.Equal(got, []string{"greet", "slow"}) {
			t.Errorf("%s offers %q, want the job names", cmd, got)
		}
	}
	// One name only: nothing more after it.
	if got := h.complete("get", "greeting"); len(got) != 0 {
		t.Errorf("get greeting offers %q", got)
	}
	// A global --home anywhere selects the daemon asked.
	cmd := exec.Command(bin, "get", "--home", h.dir, completeFlag)
	cmd.Env = append(os.Environ(), "WHENLUA_HOME=/nonexistent")
	if r := runCmd(t, cmd); strings.Fields(r.stdout) == nil || !hasAll(strings.Fields(r.stdout), "greeting", "load") {
		t.Errorf("get --home DIR offers %v", r)
	}

	serial := strings.TrimSpace(h.ok("start", "slow"))
	for _, c := range []string{"cancel", "tail"} {
		if got := h.complete(c); !slices.Equal(got, []string{serial}) {
			t.Errorf("%s offers %q, want the running serial %s", c, got, serial)
		}
	}
	h.ok("cancel", serial)
	waitFor(t, "the cancelled run in the log", func() bool { return slices.Contains(h.complete("output"), serial) })
}

func TestCompletionWithoutADaemonOffersNothingAndSaysNothing(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	for _, words := range [][]string{{"get"}, {"set"}, {"start"}, {"log"}, {"tail"}, {"output"}} {
		if got := h.complete(words...); len(got) != 0 {
			t.Errorf("%s without a daemon offers %q", words, got)
		}
	}
}

func TestCompletionOffersCommandsFlagsAndFlagValues(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	top := h.complete()
	if !hasAll(top, "daemon", "set", "get", "history", "log", "completion") || slices.Contains(top, "docs") {
		t.Errorf("top level offers %q", top)
	}
	if got := h.complete("daemon"); !hasAll(got, "run", "start", "stop", "status", "restart") {
		t.Errorf("daemon offers %q", got)
	}
	if got := h.complete("history", "-"); !hasAll(got, "-n", "--json", "--help") {
		t.Errorf("history - offers %q", got)
	}
	if got := h.complete("history", "x", "--j"); !hasAll(got, "--json") {
		t.Errorf("history x --j offers %q", got)
	}
	if got := h.complete("-"); !hasAll(got, "--home", "--help") {
		t.Errorf("- offers %q", got)
	}
	if got := h.complete("set", "--type"); !slices.Equal(got, []string{"string", "int", "float", "bool"}) {
		t.Errorf("set --type offers %q", got)
	}
	if got := h.complete("daemon", "run", "--log-level"); !hasAll(got, "debug", "info") {
		t.Errorf("daemon run --log-level offers %q", got)
	}
	if got := h.complete("completion"); len(got) != 0 {
		t.Errorf("completion offers %q", got)
	}
	if got := h.complete("log", "-n"); len(got) != 0 {
		t.Errorf("log -n offers %q, want nothing (a number follows)", got)
	}
}

func TestCompletionScriptsAreValidForTheirShells(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			r := runCmd(t, execBin("completion", shell))
			if r.code != 0 || !strings.Contains(r.stdout, completeFlag) || r.stderr != "" {
				t.Fatalf("completion %s: %v", shell, r)
			}
			path, err := exec.LookPath(shell)
			if err != nil {
				t.Skipf("%s is not installed: syntax not checked", shell)
			}
			file := filepath.Join(t.TempDir(), "completion."+shell)
			if err := os.WriteFile(file, []byte(r.stdout), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(path, "-n", file).CombinedOutput(); err != nil {
				t.Errorf("%s -n rejects the script: %v\n%s", shell, err, out)
			}
		})
	}
	if r := runCmd(t, execBin("completion", "tcsh")); r.code != 2 {
		t.Errorf("completion tcsh: %v, want exit 2", r)
	}
}

// TestBashCompletionCompletesThroughTheScript sources the bash script and
// calls its function as bash would on a tab.
func TestBashCompletionCompletesThroughTheScript(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	h := newHome(t)
	h.start()
	h.ok("set", "greeting=hi", "green=1", "other=2")
	for _, tc := range []struct{ line, want string }{
		{"whenlua get gr", "green greeting"},
		{"whenlua set gree", "green= greeting="},
		{"whenlua hist", "history"},
		{"whenlua history -", "--help --json -h -n"},
		{"whenlua daemon st", "start status stop"},
		{"whenlua set x=", ""},
	} {
		script := `source <("$WL" completion bash)
COMP_LINE="$LINE"; COMP_POINT=${#COMP_LINE}
read -r -a COMP_WORDS <<<"$LINE"; COMP_CWORD=$((${#COMP_WORDS[@]}-1))
_whenlua_complete
printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '`
		cmd := h.command(t.Context(), "")
		cmd.Path, cmd.Args = bash, []string{"bash", "-c", script}
		cmd.Env = append(cmd.Env, "WL="+bin, "LINE="+tc.line, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		r := runCmd(t, cmd)
		if got := strings.TrimSpace(r.stdout); got != tc.want || r.code != 0 {
			t.Errorf("%q completes to %q, want %q (%v)", tc.line, got, tc.want, r)
		}
	}
}
