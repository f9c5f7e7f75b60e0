package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// replPiped runs `whenlua repl args...` with input on a pipe.
func (h *home) replPiped(input string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := h.command(ctx, append([]string{"repl"}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	return runCmd(h.t, cmd)
}

const replJobs = `when("x == 1", [[ echo "x is $x" ]], { name = "hello" })
when("changes('y')", "true", { name = "ychg" })
every("1 year", "true", { name = "slow" })
`

func TestReplPipedAgainstADaemon(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", replJobs)
	h.start()
	h.ok("set", "--type", "int", "x=0", "y=3", "load=7")
	h.ok("set", "type=busy")
	waitFor(t, "the run of ychg", func() bool { return h.ok("log") != "" })
	logBefore := h.ok("log")
	input := strings.Join([]string{
		"x",
		"y + 1",
		"load >= 6 and type == 'busy'", // bare names are variables, even Lua's
		"nosuch",
		"test{x = 1}",
		"test{x = 1, y = 4}",
		"test('x', 5)",
		"1 +* 2", // an error, and the session goes on
		"if y > 2 then",
		"  print('big', y)",
		"end",
		"vars()",
		"jobs()",
		"changes('y')", // before a refresh: no previous snapshot
		"set{x = 1}",
		"refresh()",
		"changes('y'), prev('y')",
		"=x + 100",
	}, "\n") + "\n"
	r := h.replPiped(input)
	wantOut := strings.Join([]string{
		"0",
		"4",
		"true",
		"nil",
		"hello",
		"hello",
		"ychg",
		"(none)",
		"big\t3",
		"load=7\ntype=busy\nx=0\ny=3",
		"hello\twhen\tx == 1\t" + filepath.Join(h.dir, "jobs", "demo.lua") + ":1",
		"slow\tevery\tyear\t" + filepath.Join(h.dir, "jobs", "demo.lua") + ":3",
		"ychg\twhen\tchanges('y')\t" + filepath.Join(h.dir, "jobs", "demo.lua") + ":2",
		"true",
		"false\t3",
		"100",
	}, "\n") + "\n"
	if r.stdout != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, wantOut)
	}
	errs := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != 1 || len(errs) != 2 || !strings.HasPrefix(errs[0], "stdin:1: syntax error") ||
		!strings.HasPrefix(errs[1], "stdin:1: set: the REPL does not change the daemon's variables") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	// test{} and the refused set changed nothing.
	if vars := h.ok("vars"); vars != "load=7\ntype=busy\nx=0\ny=3\n" {
		t.Errorf("vars after the session:\n%s", vars)
	}
	if log := h.ok("log"); log != logBefore {
		t.Errorf("the session ran jobs:\n%s", log)
	}

	// A clean script exits 0 and prints no prompt or banner.
	if r := h.replPiped("x\n\n   \ntest{x = 1}\n"); r.code != 0 || r.stdout != "0\nhello\n" || r.stderr != "" {
		t.Errorf("clean script: %v", r)
	}
	// An unfinished chunk at the end of the input is a syntax error.
	if r := h.replPiped("if x then\n"); r.code != 1 || !strings.Contains(r.stderr, "stdin: syntax error at end of file") {
		t.Errorf("unfinished chunk: %v", r)
	}
}

func TestReplWithoutADaemonSaysHowToStartOne(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	r := h.replPiped("1\n")
	if r.code != 1 || !strings.Contains(r.stderr, "no daemon is running") || r.stdout != "" {
		t.Errorf("repl without a daemon: %v", r)
	}
}

func TestReplWithAFileEvaluatesItsJobsLocally(t *testing.T) {
	t.Parallel()
	h := newHome(t) // no daemon
	dir := t.TempDir()
	path := filepath.Join(dir, "f.lua")
	os.MkdirAll(filepath.Join(dir, "lib"), 0o700)
	os.WriteFile(filepath.Join(dir, "lib", "limits.lua"), []byte("return { high = 6 }\n"), 0o600)
	os.WriteFile(path, []byte(`local limits = require "limits"
when("load >= " .. limits.high, "true", { name = "busy" })
when("changes('load')", "true", { name = "moved" })
when("reloaded()", "true", { name = "boot" })
on_load(function() set("load", 1) end)
`), 0o600)
	input := strings.Join([]string{
		"load",
		"test{load = 7}",
		"load", // test changed nothing
		"set{load = 7}",
		"load",
		"set{load = 8}", // busy stays true: only moved
		"whisper('load', 2)",
		"load",
		"test{load = 9}", // busy has not seen load go down: only moved
		"jobs()",
		"changes('load'), prev('load')",
		"refresh()",
		"changes('load'), prev('load')",
		"_G.error('oops')",
	}, "\n") + "\n"
	r := h.replPiped(input, "--file", path)
	wantOut := strings.Join([]string{
		"1",
		"busy\nmoved",
		"1",
		"busy\nmoved",
		"7",
		"moved",
		"2",
		"moved",
		"busy\twhen\tload >= 6\t" + path + ":2",
		"moved\twhen\tchanges('load')\t" + path + ":3",
		"boot\twhen\treloaded()\t" + path + ":4",
		"true\tnil",
		"false\t2",
	}, "\n") + "\n"
	if r.stdout != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, wantOut)
	}
	if r.code != 1 || r.stderr != "stdin:1: oops\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "whenlua.sock")); err == nil {
		t.Errorf("repl --file started a daemon")
	}

	// A file that does not load: its errors, exit 1, no session.
	bad := filepath.Join(dir, "bad.lua")
	os.WriteFile(bad, []byte("\nwhen('x', 'true', { nmae = 1 })\n"), 0o600)
	if r := h.replPiped("1\n", "--file", bad); r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, bad+`:2: when: unknown option "nmae"`) {
		t.Errorf("repl --file of a bad file: %v", r)
	}
	// Two files may not declare the same job name.
	if r := h.replPiped("1\n", "-f", path, "-f", path); r.code != 1 || !strings.Contains(r.stderr, "already used by") {
		t.Errorf("repl -f f -f f: %v", r)
	}
}

func TestReplHelpIsDocumented(t *testing.T) {
	t.Parallel()
	r := runCmd(t, exec.Command(bin, "repl", "--help"))
	for _, want := range []string{"--file", "_G.pairs", "refresh()", "repl_history"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("repl --help does not mention %s:\n%s", want, r.stdout)
		}
	}
}
