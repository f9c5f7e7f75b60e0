package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// bin is the whenlua binary built once by TestMain; every end-to-end test
// runs it against a real daemon started with `daemon start`.
var bin string

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[len(os.Args)-1]))
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wlbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Readable by everyone: one test runs the binary as another user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := copyHelper(dir); err != nil {
		fmt.Fprintln(os.Stderr, "copy the test binary:", err)
		return 1
	}
	bin = filepath.Join(dir, "whenlua")
	build := exec.Command("go", "build", "-o", dir, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build whenlua:", err)
		return 1
	}
	return m.Run()
}

// home is a whenlua home in a short temp directory (a unix socket path
// must stay under 108 bytes, which t.TempDir's long names can exceed).
type home struct {
	t   testing.TB
	dir string
}

// newHome makes a home with an empty jobs directory, so no sample job file
// is installed; its daemon is stopped at the end of the test.
func newHome(t testing.TB) *home {
	t.Helper()
	h := newBareHome(t)
	if err := os.MkdirAll(filepath.Join(h.dir, "jobs"), 0o700); err != nil {
		t.Fatal(err)
	}
	return h
}

// newBareHome returns a home directory path that does not exist yet.
func newBareHome(t testing.TB) *home {
	t.Helper()
	parent, err := os.MkdirTemp("", "wlh")
	if err != nil {
		t.Fatal(err)
	}
	h := &home{t: t, dir: filepath.Join(parent, "h")}
	t.Cleanup(func() {
		h.kill()
		os.RemoveAll(parent)
	})
	return h
}

// result is what one run of the binary did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// command returns the binary with args, WHENLUA_HOME set to the home.
func (h *home) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, whenlua.EnvHome+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, whenlua.EnvHome+"="+h.dir)
	return cmd
}

// run runs the binary and returns what it did.
func (h *home) run(args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return runCmd(h.t, h.command(ctx, args...))
}

func runCmd(t testing.TB, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return r
}

// ok runs the binary, requires exit 0 and an empty stderr, and returns stdout.
func (h *home) ok(args ...string) string {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 || r.stderr != "" {
		h.t.Fatalf("whenlua %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// fails runs the binary and requires exit code and exactly one line on
// stderr (none for silent failures), containing each of want.
func (h *home) fails(code int, args []string, want ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.code != code {
		h.t.Fatalf("whenlua %s: %v, want exit %d", strings.Join(args, " "), r, code)
	}
	if len(want) > 0 && (strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n")) {
		h.t.Errorf("whenlua %s: stderr %q is not one line", strings.Join(args, " "), r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			h.t.Errorf("whenlua %s: stderr %q does not say %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	return r
}

// start starts the home's daemon with `daemon start` and flags, and
// returns its pid.
func (h *home) start(flags ...string) int {
	h.t.Helper()
	out := h.ok(append([]string{"daemon", "start"}, flags...)...)
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		h.t.Fatalf("daemon start printed %q, want a pid", out)
	}
	return pid
}

// pid returns the running daemon's pid, or 0.
func (h *home) pid() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := whenlua.Dial(filepath.Join(h.dir, "whenlua.sock"))
	defer c.Close()
	p, err := c.Ping(ctx)
	if err != nil {
		return 0
	}
	return p.PID
}

// kill SIGKILLs the home's daemon, if one runs, and waits until it is gone.
func (h *home) kill() {
	if pid := h.pid(); pid != 0 {
		killAndWait(h.t, pid)
	}
}

func killAndWait(t testing.TB, pid int) {
	t.Helper()
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(30 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still runs 30s after SIGKILL", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client returns a client of the home's daemon, closed with the test.
func (h *home) client() *whenlua.Client {
	c := whenlua.Dial(filepath.Join(h.dir, "whenlua.sock"))
	h.t.Cleanup(func() { c.Close() })
	return c
}

func (h *home) writeJob(name, src string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, "jobs", name), []byte(src), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSetGetVarsHistoryAndUnsetSurviveADaemonRestart(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	h.ok("set", "s=hello world")
	h.ok("set", "--type", "int", "i=42")
	h.ok("set", "--type", "float", "f=2.5")
	h.ok("set", "--type", "bool", "b=true")
	// Several at once, --type applying to the pairs after it until the next.
	h.ok("set", "a=x", "--type", "int", "n1=1", "n2=-2", "--type", "string", "z=3")
	h.ok("whisper", "--type", "int", "i=43")

	for name, want := range map[string]string{"s": "hello world", "i": "43", "f": "2.5", "b": "true", "n2": "-2", "z": "3"} {
		if got := h.ok("get", name); got != want+"\n" {
			t.Errorf("get %s = %q, want %q", name, got, want)
		}
	}
	wantVars := "a=x\nb=true\nf=2.5\ni=43\nn1=1\nn2=-2\ns=hello world\nz=3\n"
	if got := h.ok("vars"); got != wantVars {
		t.Errorf("vars:\n%s\nwant:\n%s", got, wantVars)
	}
	var typed map[string]whenlua.Value
	if err := json.Unmarshal([]byte(h.ok("vars", "--json")), &typed); err != nil {
		t.Fatal(err)
	}
	if !typed["i"].Equal(whenlua.Int(43)) || !typed["z"].Equal(whenlua.String("3")) || !typed["b"].Equal(whenlua.Bool(true)) || !typed["f"].Equal(whenlua.Float(2.5)) {
		t.Errorf("vars --json lost the types: %v", typed)
	}

	hist := strings.Split(strings.TrimSpace(h.ok("history", "i")), "\n")
	if len(hist) != 2 || !strings.HasSuffix(hist[0], "\twhisper\t43") || !strings.HasSuffix(hist[1], "\tcli\t42") {
		t.Errorf("history i, newest first with origins:\n%s", strings.Join(hist, "\n"))
	}

	h.ok("unset", "a", "z")
	h.fails(1, []string{"get", "a"}) // unset: exit 1, nothing printed
	if r := h.run("get", "a"); r.stdout != "" || r.stderr != "" {
		t.Errorf("get of an unset variable printed something: %v", r)
	}
	if hist := h.ok("history", "a"); !strings.HasPrefix(hist, strings.SplitN(hist, "\t", 2)[0]+"\tcli\t(unset)\n") {
		t.Errorf("history a does not start with the unset: %q", hist)
	}

	before := h.ok("vars")
	old := h.pid()
	out := h.ok("daemon", "restart")
	if pid, _ := strconv.Atoi(strings.TrimSpace(out)); pid == 0 || pid == old {
		t.Fatalf("daemon restart printed %q (old pid %d)", out, old)
	}
	if processGone(old) == false {
		t.Errorf("old daemon %d still runs after restart", old)
	}
	if after := h.ok("vars"); after != before {
		t.Errorf("vars after restart:\n%s\nbefore:\n%s", after, before)
	}
	if got := len(strings.Split(strings.TrimSpace(h.ok("history", "i")), "\n")); got != 2 {
		t.Errorf("history i after restart has %d versions, want 2", got)
	}
}

func TestBadInputIsOneLineOnStderrExit1AndStoresNothing(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	long := strings.Repeat("n", whenlua.MaxNameLen+1)
	big := strings.Repeat("v", 65<<10)
	cases := []struct {
		name string
		args []string
		say  string
	}{
		{"a name starting with a digit", []string{"set", "1x=1"}, "variable name"},
		{"a name with a dash", []string{"set", "a-b=1"}, "variable name"},
		{"the reserved name JOBSERIAL", []string{"set", "JOBSERIAL=5"}, "reserved"},
		{"the reserved name JOBNAME", []string{"whisper", "JOBNAME=x"}, "reserved"},
		{"a 257-byte name", []string{"set", long + "=1"}, "longer than 256"},
		{"a 65 KiB value", []string{"set", "big=" + big}, "more than 65536"},
		{"a 65 KiB value whispered", []string{"whisper", "big=" + big}, "more than 65536"},
		{"an int that does not parse", []string{"set", "--type", "int", "n=abc"}, `"abc" is not an int`},
		{"a bool that does not parse", []string{"set", "--type", "bool", "b=maybe"}, `"maybe" is not a bool`},
		{"a float that does not parse", []string{"set", "--type", "float", "f=1.2.3"}, "not a float"},
		{"a good pair with a bad one", []string{"set", "good=1", "--type", "int", "n=abc"}, "not an int"},
		{"a bad name to unset", []string{"unset", "ok", "9bad"}, "variable name"},
		{"a bad name to get", []string{"get", "JOBNAME"}, "reserved"},
		{"a bad name to test", []string{"test", "x-y=1"}, "variable name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.t = t
			r := h.fails(1, c.args, c.say)
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
	h.t = t
	if vars := h.ok("vars"); vars != "" {
		t.Errorf("bad input stored something:\n%s", vars)
	}
	for _, name := range []string{"n", "b", "f", "big", "good", "ok"} {
		if hist := h.ok("history", name); hist != "" {
			t.Errorf("history %s: %q, want nothing", name, hist)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	for _, args := range [][]string{
		{"frobnicate"},
		{"daemon", "frobnicate"},
		{"vars", "--bogus"},
		{"history"},
		{"history", "-n", "x", "v"},
		{"get", "a", "b"},
		{"cancel", "abc"},
		{"tail"},
		{"set"},
		{"set", "novalue"},
		{"set", "--type", "complex", "a=1"},
		{"set", "--frob", "a=1"},
		{"vars", "extra"},
	} {
		r := h.run(args...)
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "whenlua: ") {
			t.Errorf("whenlua %s: %v, want exit 2 and one line", strings.Join(args, " "), r)
		}
	}
	if r := h.run(); r.code != 2 {
		t.Errorf("no command: %v, want exit 2", r)
	}
	if r := h.run("help"); r.code != 0 || !strings.Contains(r.stdout, "daemon") {
		t.Errorf("help: %v", r)
	}
}

// A negative -n is a usage error of its own, but the arguments are checked
// first: a wrong count of them is reported as the usage line.
func TestCountFlagAfterArguments(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"history", "v", "-n", "-1"}, "-n must not be negative"},
		{[]string{"history", "-n", "-1"}, "usage: whenlua history NAME [-n N]"},
		{[]string{"log", "-n", "-1"}, "-n must not be negative"},
		{[]string{"log", "a", "b", "-n", "-1"}, "usage: whenlua log [NAME] [-n N]"},
		{[]string{"why", "j", "-n=-1"}, "-n must not be negative"},
		{[]string{"why", "-n", "-1"}, "usage: whenlua why JOB [-n N]"},
	} {
		if r := h.run(tc.args...); r.code != 2 || r.stderr != "whenlua: "+tc.want+"\n" {
			t.Errorf("whenlua %s: %v, want exit 2 and %q", strings.Join(tc.args, " "), r, tc.want)
		}
	}
}

func TestACommandWithoutADaemonSaysHowToStartOne(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	want := "whenlua: no daemon is running for " + h.dir + "; start one with: whenlua daemon start\n"
	for _, args := range [][]string{{"vars"}, {"set", "a=1"}, {"get", "a"}, {"status"}, {"log"}} {
		r := h.run(args...)
		if r.code != 1 || r.stderr != want || r.stdout != "" {
			t.Errorf("whenlua %s: %v, want exit 1 and %q", strings.Join(args, " "), r, want)
		}
	}
	r := h.run("daemon", "status")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "stopped") {
		t.Errorf("daemon status without a daemon: %v", r)
	}
	if r := h.run("daemon", "stop"); r.code != 1 || !strings.Contains(r.stderr, "no daemon is running") {
		t.Errorf("daemon stop without a daemon: %v", r)
	}
	// --home given as a flag is repeated in the hint, and may follow the command.
	other := t.TempDir()
	cmd := exec.Command(bin, "vars", "--home", other)
	r = runCmd(t, cmd)
	if r.code != 1 || !strings.Contains(r.stderr, "whenlua --home "+other+" daemon start") {
		t.Errorf("vars --home: %v", r)
	}
}

func TestFlagsMayFollowTheArguments(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	for i := range 6 {
		h.ok("set", "--type", "int", fmt.Sprintf("n=%d", i))
	}
	for _, args := range [][]string{
		{"history", "n", "-n", "2"},
		{"history", "-n", "2", "n"},
		{"history", "n", "-n=2"},
		{"history", "n", "--n", "2"},
	} {
		out := h.ok(args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasSuffix(lines[0], "\t5") || !strings.HasSuffix(lines[1], "\t4") {
			t.Errorf("whenlua %s:\n%s", strings.Join(args, " "), out)
		}
	}
	var vs []whenlua.Version
	if err := json.Unmarshal([]byte(h.ok("history", "n", "--json", "-n", "3")), &vs); err != nil || len(vs) != 3 {
		t.Errorf("history n --json -n 3: %v, %v", vs, err)
	}
	// A global flag after the command.
	cmd := exec.Command(bin, "get", "n", "--home", h.dir)
	if r := runCmd(t, cmd); r.code != 0 || r.stdout != "5\n" {
		t.Errorf("get n --home DIR: %v", r)
	}
}

func TestJobCommandsRunTailCancelAndShowOutput(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.writeJob("demo.lua", `
when("x == 1", [[ echo "x is $x" ]], { name = "hello" })
every("1 year", [[ echo begin; sleep 60; echo never ]], { name = "slow" })
`)
	h.start()
	if names := h.ok("names"); !strings.Contains(names, "hello\twhen\tx == 1\t") || !strings.Contains(names, "slow\tevery\t") {
		t.Errorf("names:\n%s", names)
	}
	if out := h.ok("test", "--type", "int", "x=1"); out != "hello\n" {
		t.Errorf("test x=1 printed %q, want hello", out)
	}
	if vars := h.ok("vars"); vars != "" {
		t.Errorf("test changed variables: %q", vars)
	}
	h.ok("set", "--type", "int", "x=1")
	var runs []whenlua.Run
	waitFor(t, "the run of hello", func() bool {
		runs = nil
		_ = json.Unmarshal([]byte(h.ok("log", "hello", "--json")), &runs)
		return len(runs) == 1
	})
	if line := h.ok("log", "hello"); !strings.HasPrefix(line, fmt.Sprintf("%d\thello\t", runs[0].Serial)) || !strings.HasSuffix(line, "\t0\n") {
		t.Errorf("log hello: %q", line)
	}
	if out := h.ok("output", fmt.Sprint(runs[0].Serial)); out != "x is 1\n" {
		t.Errorf("output: %q", out)
	}
	// tail of a finished run: its output, and exit 0 when it succeeded.
	if out := h.ok("tail", fmt.Sprint(runs[0].Serial)); out != "x is 1\n" {
		t.Errorf("tail of a finished run: %q", out)
	}

	serial := strings.TrimSpace(h.ok("start", "slow"))
	if jobs := h.ok("jobs"); !strings.HasPrefix(jobs, serial+"\tslow\t") {
		t.Errorf("jobs: %q, want run %s of slow", jobs, serial)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tail := h.command(ctx, "tail", serial)
	var tailErr strings.Builder
	tail.Stderr = &tailErr
	pipe, err := tail.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(pipe)
	if line, err := rd.ReadString('\n'); line != "begin\n" {
		t.Errorf("tail's first line %q, %v", line, err)
	}
	h.ok("cancel", serial)
	if rest, _ := io.ReadAll(rd); len(rest) != 0 {
		t.Errorf("tail printed %q after begin", rest)
	}
	// tail says how the run ended.
	if err := tail.Wait(); tail.ProcessState.ExitCode() != 1 || tailErr.String() != "whenlua: run "+serial+" of slow: cancelled, signal terminated\n" {
		t.Errorf("tail of a cancelled run: %v, stderr %q", err, tailErr.String())
	}
	waitFor(t, "the cancelled run in the log", func() bool {
		return strings.HasPrefix(h.ok("log", "slow", "-n", "1"), serial+"\tslow\t")
	})
	if line := h.ok("log", "-n", "1", "slow"); !strings.Contains(line, "signal") {
		t.Errorf("log of the cancelled run: %q", line)
	}
	if r := h.run("cancel", "99999"); r.code != 1 || r.stderr == "" {
		t.Errorf("cancel of an unknown run: %v", r)
	}
	if st := h.ok("status"); !strings.Contains(st, "demo.lua") || !strings.Contains(st, "slow") {
		t.Errorf("status:\n%s", st)
	}
	if out := h.ok("reload"); !strings.Contains(out, "demo.lua") {
		t.Errorf("reload: %q", out)
	}
	h.writeJob("broken.lua", "when(")
	r := h.fails(1, []string{"reload"}, "broken.lua")
	if !strings.Contains(r.stdout, "demo.lua") {
		t.Errorf("reload with a broken file: %v", r)
	}
}

// vars and history write one line per variable or version: a value with a
// newline (or another control character), or starting with a double quote,
// is double-quoted with escapes; get prints it as it is.
func TestListingsKeepAValueWithANewlineOnOneLine(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.start()
	h.ok("set", "ml=line1\nline2", `q="x"`, "tab=a\tb", "plain=a \"b\"", "u=(unset)")
	if got, want := h.ok("vars"), "ml=\"line1\\nline2\"\nplain=a \"b\"\nq=\"\\\"x\\\"\"\ntab=\"a\\tb\"\nu=(unset)\n"; got != want {
		t.Errorf("vars:\n%s\nwant:\n%s", got, want)
	}
	if got := h.ok("get", "ml"); got != "line1\nline2\n" {
		t.Errorf("get ml: %q", got)
	}
	h.ok("unset", "u")
	lines := strings.Split(strings.TrimSuffix(h.ok("history", "u"), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "\tcli\t(unset)") || !strings.HasSuffix(lines[1], "\tcli\t\"(unset)\"") {
		t.Errorf("history u: %q", lines)
	}
	if got := h.ok("history", "ml"); !strings.HasSuffix(got, "\tcli\t\"line1\\nline2\"\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("history ml: %q", got)
	}
}
