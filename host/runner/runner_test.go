package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// guard bounds every wait in these tests; it is a failure guard, not a timing assertion.
const guard = 60 * time.Second

var testEnv = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}

func newRunner(t *testing.T, opts Options) *Runner {
	t.Helper()
	if opts.BaseDir == "" {
		opts.BaseDir = filepath.Join(t.TempDir(), "runs")
	}
	r := New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("close runner: %v", err)
		}
	})
	return r
}

// start starts spec and returns the proc and a channel that gets its result.
func start(t *testing.T, r *Runner, spec Spec) (*Proc, <-chan Result) {
	t.Helper()
	if spec.Shell == "" {
		spec.Shell = "/bin/sh"
	}
	if spec.Env == nil {
		spec.Env = testEnv
	}
	results := make(chan Result, 1)
	p, err := r.Start(spec, func(res Result) { results <- res })
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p, results
}

func wait(t *testing.T, results <-chan Result) Result {
	t.Helper()
	select {
	case res := <-results:
		return res
	case <-time.After(guard):
		t.Fatal("run did not end")
		return Result{}
	}
}

func run(t *testing.T, r *Runner, spec Spec) Result {
	t.Helper()
	_, results := start(t, r, spec)
	return wait(t, results)
}

// group lists the pids of the live processes in process group pgid.
func group(t *testing.T, pgid int) []int {
	t.Helper()
	paths, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if pg, _ := strconv.Atoi(fields[2]); pg == pgid {
			pid, _ := strconv.Atoi(strings.Fields(s)[0])
			pids = append(pids, pid)
		}
	}
	return pids
}

// syncWriter collects what is written to it and tells waiters.
type syncWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newSyncWriter() *syncWriter { return &syncWriter{changed: make(chan struct{}, 1)} }

func (w *syncWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return w.buf.Write(b)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *syncWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(guard)
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("output %q never contained %q", w.String(), s)
		}
	}
}

// tail follows p into a syncWriter in the background; the returned channel gets Tail's error.
func tail(p *Proc) (*syncWriter, <-chan error) {
	w := newSyncWriter()
	errc := make(chan error, 1)
	go func() { errc <- p.Tail(context.Background(), w) }()
	return w, errc
}

func TestEnvironmentIsExactlySpecEnv(t *testing.T) {
	t.Setenv("WHENLUA_RUNNER_LEAK", "leaked")
	r := newRunner(t, Options{})
	res := run(t, r, Spec{
		Script: `echo "free=$free job=$JOBNAME leak=${WHENLUA_RUNNER_LEAK-unset}"`,
		Env:    append([]string{"free=12", "JOBNAME=disk", MarkerVar + "=forged"}, testEnv...),
	})
	if got, want := string(res.Output), "free=12 job=disk leak=unset\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestRunsInFreshPrivateDirectory(t *testing.T) {
	r := newRunner(t, Options{})
	res := run(t, r, Spec{Serial: 7, Script: `pwd -P; head -1 ` + ScriptName})
	dir, err := filepath.EvalSymlinks(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Output), dir+"\nset -e\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	fi, err := os.Stat(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("run directory mode = %v, want 0700", fi.Mode().Perm())
	}
	if res.OutputPath != filepath.Join(res.Dir, OutputName) {
		t.Errorf("output path = %q, not output.txt in %q", res.OutputPath, res.Dir)
	}
	if b, err := os.ReadFile(res.OutputPath); err != nil || !bytes.Equal(b, res.Output) {
		t.Errorf("output.txt = %q (%v), want %q", b, err, res.Output)
	}
}

func TestSetEStopsAtFirstFailingCommand(t *testing.T) {
	r := newRunner(t, Options{})
	res := run(t, r, Spec{Script: "echo one\n(exit 4)\necho two"})
	if res.Code != 4 || string(res.Output) != "one\n" {
		t.Errorf("code %d, output %q; want 4, %q", res.Code, res.Output, "one\n")
	}
}

func TestExitCodesAndSignals(t *testing.T) {
	tests := []struct {
		name, script string
		code         int
		signal       string
	}{
		{"success exits 0", "true", 0, ""},
		{"exit status is the code", "exit 3", 3, ""},
		{"death by SIGTERM is reported as terminated", "kill -TERM $$", -1, "terminated"},
		{"death by SIGKILL is reported as killed", "kill -KILL $$", -1, "killed"},
	}
	r := newRunner(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, r, Spec{Script: tt.script})
			if res.Code != tt.code || res.Signal != tt.signal {
				t.Errorf("code %d signal %q, want %d %q", res.Code, res.Signal, tt.code, tt.signal)
			}
			if res.TimedOut || res.Cancelled {
				t.Errorf("timed out %v, cancelled %v", res.TimedOut, res.Cancelled)
			}
			if res.End.Before(res.Start) {
				t.Errorf("end %v before start %v", res.End, res.Start)
			}
		})
	}
}

func TestStdinIsDevNullAndStderrIsCaptured(t *testing.T) {
	r := newRunner(t, Options{})
	res := run(t, r, Spec{Script: "cat; echo out; echo err >&2"})
	if got, want := string(res.Output), "out\nerr\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestTimeoutTerminatesTheGroup(t *testing.T) {
	r := newRunner(t, Options{})
	res := run(t, r, Spec{Script: "sleep 1000 & sleep 1000", Timeout: 50 * time.Millisecond})
	if !res.TimedOut || res.Cancelled || res.Signal != "terminated" || res.Code != -1 {
		t.Errorf("timed out %v cancelled %v signal %q code %d; want a timeout by SIGTERM",
			res.TimedOut, res.Cancelled, res.Signal, res.Code)
	}
	if left := group(t, res.PID); len(left) > 0 {
		t.Errorf("processes %v of the group survived", left)
	}
}

func TestTimeoutKillsAfterGraceWhenTermIsIgnored(t *testing.T) {
	r := newRunner(t, Options{Grace: 50 * time.Millisecond})
	// The timeout leaves the shell ample time to set its trap first.
	res := run(t, r, Spec{Script: "trap '' TERM\nsleep 1000 & sleep 1000", Timeout: 2 * time.Second})
	if !res.TimedOut || res.Signal != "killed" {
		t.Errorf("timed out %v signal %q; want a timeout ending in SIGKILL", res.TimedOut, res.Signal)
	}
	if left := group(t, res.PID); len(left) > 0 {
		t.Errorf("processes %v of the group survived", left)
	}
}

func TestCancelLeavesNoDescendant(t *testing.T) {
	r := newRunner(t, Options{Grace: 100 * time.Millisecond})
	p, results := start(t, r, Spec{Script: "sleep 1000 &\n(trap '' TERM; sleep 1000) &\necho ready\nwait"})
	w, _ := tail(p)
	w.waitFor(t, "ready")
	if n := len(group(t, p.PID())); n < 3 {
		t.Fatalf("group has %d processes, want the shell and its children", n)
	}
	p.Cancel()
	p.Cancel()
	res := wait(t, results)
	p.Cancel() // after the end: nothing to do, nothing signalled
	if !res.Cancelled || res.TimedOut || res.Code != -1 {
		t.Errorf("cancelled %v timed out %v code %d", res.Cancelled, res.TimedOut, res.Code)
	}
	if left := group(t, p.PID()); len(left) > 0 {
		t.Errorf("processes %v of the group survived", left)
	}
}

func TestBackgroundProcessHoldingOutputIsStoppedWhenShellExits(t *testing.T) {
	r := newRunner(t, Options{Grace: 100 * time.Millisecond})
	res := run(t, r, Spec{Script: "sleep 1000 &\necho bye"})
	if res.Code != 0 || res.Cancelled || string(res.Output) != "bye\n" {
		t.Errorf("code %d cancelled %v output %q", res.Code, res.Cancelled, res.Output)
	}
	if left := group(t, res.PID); len(left) > 0 {
		t.Errorf("processes %v of the group survived", left)
	}
}

func TestBackgroundProcessWithRedirectedOutputIsStoppedWithTheRun(t *testing.T) {
	r := newRunner(t, Options{Grace: 100 * time.Millisecond})
	res := run(t, r, Spec{Script: "sleep 1000 >/dev/null 2>&1 &\necho $!"})
	pid, err := strconv.Atoi(strings.TrimSpace(string(res.Output)))
	if err != nil {
		t.Fatalf("output %q: %v", res.Output, err)
	}
	defer syscall.Kill(-res.PID, syscall.SIGKILL)
	if res.Code != 0 || res.Cancelled {
		t.Errorf("code %d cancelled %v; the run itself succeeded", res.Code, res.Cancelled)
	}
	if left := group(t, res.PID); len(left) > 0 {
		t.Errorf("the detached sleep %d outlived its run: group after the run = %v", pid, left)
	}
}

func TestHugeOutputIsCapped(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GiB through a pipe")
	}
	const size = 1 << 30
	r := newRunner(t, Options{})
	before := heapInuse()
	res := run(t, r, Spec{Script: fmt.Sprintf("head -c %d /dev/zero", size)})
	after := heapInuse()
	if after > before+64<<20 {
		t.Errorf("heap in use grew from %d to %d bytes", before, after)
	}
	if res.Code != 0 || res.OutputSize != size {
		t.Errorf("code %d, output size %d; want 0, %d", res.Code, res.OutputSize, size)
	}
	m := marker(size - DefaultHeadCap - DefaultTailCap)
	fi, err := os.Stat(res.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(DefaultHeadCap + len(m) + DefaultTailCap); fi.Size() != want {
		t.Errorf("output.txt is %d bytes, want %d", fi.Size(), want)
	}
	if len(res.Output) > DefaultStoredCap || len(res.Output) < DefaultStoredCap-len(m)-1 {
		t.Errorf("stored output is %d bytes, want about %d", len(res.Output), DefaultStoredCap)
	}
	if !bytes.Contains(res.Output, []byte(" bytes omitted ...]\n")) {
		t.Error("stored output has no omission marker")
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestTailFollowsRunningJobUntilItEnds(t *testing.T) {
	r := newRunner(t, Options{})
	p, results := start(t, r, Spec{Script: "echo first\nwhile [ ! -e go ]; do sleep 0.01; done\necho last"})
	w1, errc1 := tail(p)
	w2, errc2 := tail(p)
	w1.waitFor(t, "first\n")
	w2.waitFor(t, "first\n")
	if err := os.WriteFile(filepath.Join(p.Dir(), "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, errc := range []<-chan error{errc1, errc2} {
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("tail %d: %v", i, err)
			}
		case <-time.After(guard):
			t.Fatalf("tail %d did not end", i)
		}
	}
	for i, w := range []*syncWriter{w1, w2} {
		if got := w.String(); got != "first\nlast\n" {
			t.Errorf("tail %d wrote %q", i, got)
		}
	}
	wait(t, results)
}

func TestTailStopsWhenContextIsDone(t *testing.T) {
	r := newRunner(t, Options{})
	p, results := start(t, r, Spec{Script: "echo hi; sleep 1000"})
	ctx, cancel := context.WithCancel(context.Background())
	w := newSyncWriter()
	errc := make(chan error, 1)
	go func() { errc <- p.Tail(ctx, w) }()
	w.waitFor(t, "hi\n")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("tail = %v, want context.Canceled", err)
	}
	p.Cancel()
	wait(t, results)
}

func TestSlowTailDoesNotBlockTheJob(t *testing.T) {
	r := newRunner(t, Options{HeadCap: 1000, TailCap: 1000})
	p, results := start(t, r, Spec{Script: "echo start; while [ ! -e go ]; do sleep 0.01; done; seq 1 100000"})
	release := make(chan struct{})
	var got bytes.Buffer
	errc := make(chan error, 1)
	go func() {
		errc <- p.Tail(context.Background(), writerFunc(func(b []byte) (int, error) {
			<-release
			return got.Write(b)
		}))
	}()
	if err := os.WriteFile(filepath.Join(p.Dir(), "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := wait(t, results) // the job ended while the tail was stuck
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.String(), "start\n1\n") || !strings.HasSuffix(got.String(), "\n99999\n100000\n") ||
		!strings.Contains(got.String(), " bytes omitted ...]\n") {
		t.Errorf("tail wrote %d bytes: %.40q ... %q", got.Len(), got.String(), got.String()[max(0, got.Len()-40):])
	}
	if res.OutputSize != int64(len("start\n"))+seqSize(100000) {
		t.Errorf("output size %d", res.OutputSize)
	}
}

// seqSize is the length of the output of seq 1 n.
func seqSize(n int) int64 {
	var s int64
	for i := 1; i <= n; i++ {
		s += int64(len(strconv.Itoa(i))) + 1
	}
	return s
}

func TestCloseStopsEverything(t *testing.T) {
	r := New(Options{BaseDir: t.TempDir(), Grace: 100 * time.Millisecond})
	var all []chan Result
	var procs []*Proc
	for i := range 3 {
		results := make(chan Result, 1)
		p, err := r.Start(Spec{Serial: uint64(i), Shell: "/bin/sh", Script: "trap '' TERM; sleep 1000 & echo ready; sleep 1000"},
			func(res Result) { results <- res })
		if err != nil {
			t.Fatal(err)
		}
		defer p.Cleanup()
		w, _ := tail(p)
		w.waitFor(t, "ready") // TERM is ignored from here on
		all = append(all, results)
		procs = append(procs, p)
	}
	if n := r.Running(); n != 3 {
		t.Errorf("running = %d, want 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i, results := range all {
		select {
		case res := <-results:
			if !res.Cancelled || res.Signal != "killed" {
				t.Errorf("run %d: cancelled %v signal %q", i, res.Cancelled, res.Signal)
			}
		default:
			t.Errorf("run %d not reported when Close returned", i)
		}
		if left := group(t, procs[i].PID()); len(left) > 0 {
			t.Errorf("run %d: processes %v survived", i, left)
		}
	}
	if n := r.Running(); n != 0 {
		t.Errorf("running = %d after close", n)
	}
	if _, err := r.Start(Spec{Script: "true"}, func(Result) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("start after close = %v, want ErrClosed", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestStartFailureLeavesNothing(t *testing.T) {
	base := t.TempDir()
	r := newRunner(t, Options{BaseDir: base})
	_, err := r.Start(Spec{Script: "true", Shell: "/nonexistent/sh"}, func(Result) { t.Error("done called") })
	if err == nil {
		t.Fatal("start with a missing shell succeeded")
	}
	if entries, _ := os.ReadDir(base); len(entries) > 0 {
		t.Errorf("left %v in the base directory", entries)
	}
	if n := r.Running(); n != 0 {
		t.Errorf("running = %d", n)
	}
}

func TestCleanupRemovesRunDirectory(t *testing.T) {
	r := newRunner(t, Options{})
	results := make(chan Result, 1)
	p, err := r.Start(Spec{Shell: "/bin/sh", Script: "echo x > file"}, func(res Result) { results <- res })
	if err != nil {
		t.Fatal(err)
	}
	wait(t, results)
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory still there: %v", err)
	}
}

func TestDoneSeesItsRunNoLongerRunning(t *testing.T) {
	r := newRunner(t, Options{})
	running := make(chan int, 1)
	p, err := r.Start(Spec{Shell: "/bin/sh", Script: "true"}, func(Result) { running <- r.Running() })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Cleanup()
	select {
	case n := <-running:
		if n != 0 {
			t.Errorf("running = %d inside done", n)
		}
	case <-time.After(guard):
		t.Fatal("done not called")
	}
}

// gatedWriter blocks its first Write until open is closed.
type gatedWriter struct {
	open    chan struct{}
	started chan struct{}
	once    sync.Once
	buf     bytes.Buffer
}

func (w *gatedWriter) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.started); <-w.open })
	return w.buf.Write(b)
}

func TestATailStillReadingWhenTheRunIsCleanedUpGetsAllOfIt(t *testing.T) {
	r := newRunner(t, Options{HeadCap: 1 << 20})
	gate := filepath.Join(t.TempDir(), "gate")
	p, results := start(t, r, Spec{Serial: 1, Job: "j", Script: `seq 1 20000; while [ ! -e ` + gate + ` ]; do sleep 0.01; done; echo end`})
	w := &gatedWriter{open: make(chan struct{}), started: make(chan struct{})}
	tailed := make(chan error, 1)
	go func() { tailed <- p.Tail(context.Background(), w) }()
	<-w.started
	os.WriteFile(gate, nil, 0o600)
	res := wait(t, results)
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	close(w.open)
	if err := <-tailed; err != nil {
		t.Fatalf("tail: %v", err)
	}
	if int64(w.buf.Len()) != res.OutputSize || !strings.HasSuffix(w.buf.String(), "20000\nend\n") {
		t.Fatalf("tail got %d bytes, want %d ending in 20000 and end", w.buf.Len(), res.OutputSize)
	}
}

// A run's start is taken before its process is started and its end after
// the shell exited, so that the duration covers all of the script: the
// times the script itself reads lie between them, even when the runner is
// delayed right after starting the process, as on a busy machine.
func TestARunsDurationCoversTheWholeScript(t *testing.T) {
	afterStart = func() { time.Sleep(50 * time.Millisecond) }
	t.Cleanup(func() { afterStart = nil })
	r := newRunner(t, Options{})
	for i := range 3 {
		res := run(t, r, Spec{Serial: uint64(i + 1), Script: `date +%s%N; date +%s%N`})
		var first, last int64
		if _, err := fmt.Sscanf(string(res.Output), "%d\n%d\n", &first, &last); err != nil {
			t.Fatalf("output %q: %v", res.Output, err)
		}
		if s, e := res.Start.UnixNano(), res.End.UnixNano(); s > first || e < last {
			t.Fatalf("run %d: start %d end %d (duration %v), but the script read %d and %d",
				i+1, s, e, res.End.Sub(res.Start), first, last)
		}
	}
}
