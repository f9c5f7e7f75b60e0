package main

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/whenlua/whenlua"
)

// browser starts a headless Chromium (Debian's chromium package; CI
// installs it) with a fresh profile and nothing that reaches the network
// on its own, and returns a context of one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed: .ci/run installs it, and CI never skips the report's browser tests")
		}
		t.Skip("chromium is not installed (apt-get install chromium): the report is checked in a headless browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first call starts the browser, which lives as long as ctx: it
	// takes no timeout of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// pageView is what the report shows, read from the browser's DOM.
type pageView struct {
	Scripts int `json:"scripts"`
	Jobs    []struct {
		Name    string         `json:"name"`
		Marks   map[string]int `json:"marks"`
		Counts  []string       `json:"counts"`
		Hidden  int            `json:"hidden"` // marks the browser lays out with no width
		Capped  bool           `json:"capped"`
		Summary string         `json:"summary"`
		Label   string         `json:"label"` // the timeline's aria-label
	} `json:"jobs"`
	Vars []struct {
		Name    string    `json:"name"`
		Kind    string    `json:"kind"`
		Steps   int       `json:"steps"`
		Levels  []float64 `json:"levels"` // y of each numeric step, oldest first
		Labels  []string  `json:"labels"` // the titles of the steps
		Values  []string  `json:"values"` // the table's values, newest first
		Before  int       `json:"before"`
		Capped  bool      `json:"capped"`
		Current string    `json:"current"`
	} `json:"vars"`
	Quiet []string `json:"quiet"`
}

// readPage is the DOM query behind pageView.
const readPage = `(() => {
  const all = (el, q) => [...el.querySelectorAll(q)];
  const jobs = all(document, 'table.timeline tr.job').map(tr => {
    const marks = {};
    for (const r of all(tr, 'rect.run')) {
      const k = [...r.classList].find(c => c !== 'run');
      marks[k] = (marks[k] || 0) + 1;
    }
    return {
      name: tr.querySelector('th.name')?.firstChild?.textContent ?? '',
      marks,
      counts: all(tr, '.summary .count').map(c => c.textContent),
      hidden: all(tr, 'rect.run').filter(r => r.getBoundingClientRect().width < 1).length,
      capped: !!tr.querySelector('.capped'),
      summary: tr.querySelector('.summary')?.textContent ?? '',
      label: tr.querySelector('svg.runs')?.getAttribute('aria-label') ?? '',
    };
  });
  const vars = all(document, 'section.var').map(s => ({
    name: s.querySelector('h3')?.textContent ?? '',
    kind: s.querySelector('svg.plot')?.classList.contains('numeric') ? 'numeric' : 'labelled',
    steps: all(s, 'g.step').length,
    levels: all(s, 'g.step line.level').map(l => l.y1.baseVal.value),
    labels: all(s, 'g.step > title').map(t => t.textContent),
    values: all(s, 'table.versions tr td:nth-child(3)').map(td => td.textContent),
    before: all(s, 'g.before').length,
    capped: !!s.querySelector('.capped'),
    current: s.querySelector('p.meta')?.textContent ?? '',
  }));
  const quiet = all(document, 'table.quiet tr td:first-child').map(td => td.textContent);
  return {scripts: document.querySelectorAll('script').length, jobs, vars, quiet};
})()`

// seen is what the browser saw while loading a page: the URLs it
// requested and the messages of the dialogs that scripts opened (dismissed,
// so that a script's alert does not hold up the load).
type seen struct {
	URLs, Dialogs []string
}

// load opens file in the browser and returns what it shows and what the
// browser saw.
func load(t *testing.T, ctx context.Context, file string) (pageView, seen) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var mu sync.Mutex
	var s seen
	dialogs := make(chan struct{}, 16)
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			s.URLs = append(s.URLs, e.Request.URL)
		case *page.EventJavascriptDialogOpening:
			s.Dialogs = append(s.Dialogs, e.Message)
			select {
			case dialogs <- struct{}{}:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	// A listener must not send commands: dismiss dialogs from here.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-dialogs:
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+file)); err != nil {
		t.Fatalf("load %s in chromium: %v", file, err)
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[pageView](readPage))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return v, seen{URLs: slices.Clone(s.URLs), Dialogs: slices.Clone(s.Dialogs)}
}

// hostileJob and hostileValue would be markup if the page did not escape
// them (a job name cannot hold a space or a slash).
const (
	hostileJob   = `<script>alert(1)`
	hostileValue = `</title><script>alert(2)</script><b>bold</b>`
)

func TestReportShowsRunsAndVariablesInAHeadlessBrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	h := newHome(t)
	h.writeJob("r.lua", `
when("x == 1", "true", { name = "good" })
when("x == 2", "exit 3", { name = "`+hostileJob+`" })
when("false", "sleep 1000", { name = "slow" })
when("false", "true", { name = "picky", pre = function() return false end })
`)
	h.start()
	// A run in flight when the daemon is killed is lost at the restart.
	lost := h.running(h.startJob("slow").Serial)
	killAndWait(t, h.pid())
	h.start()
	if r, ok := h.runOf(lost.Serial); !ok || r.State != whenlua.RunLost {
		t.Fatalf("run %d after the restart: %+v, want lost", lost.Serial, r)
	}
	for _, x := range []string{"1", "2", "1", "2", "1"} {
		h.ok("set", "--type", "int", "x="+x)
	}
	h.waitRuns("good", 3)
	h.waitRuns(hostileJob, 2)
	h.fails(1, []string{"start", "picky"}, "refused")
	for _, temp := range []string{"3", "7", "5", "1.5"} {
		h.ok("set", "--type", "float", "temp="+temp)
	}
	h.ok("set", "s="+hostileValue)
	h.ok("set", "s=plain")
	h.ok("set", "--type", "bool", "flag=true")
	h.ok("set", "--type", "bool", "flag=false")
	h.ok("unset", "flag")
	h.ok("set", "--type", "bool", "flag=true")
	running := h.running(h.startJob("slow").Serial)
	t.Cleanup(func() { h.run("cancel", strconv.FormatUint(running.Serial, 10)) })

	file := filepath.Join(t.TempDir(), "report.html")
	if out := h.ok("report", "--html", file); out != "" {
		t.Errorf("report --html printed %q", out)
	}
	stdout := h.ok("report")
	if b, err := os.ReadFile(file); err != nil || !strings.HasPrefix(string(b), "<!DOCTYPE html>") || !strings.HasPrefix(stdout, "<!DOCTYPE html>") {
		t.Fatalf("report: file %.40q (%v), stdout %.40q", b, err, stdout)
	}
	v, saw := load(t, ctx, file)

	t.Run("one timeline row per job with its runs by kind", func(t *testing.T) {
		want := map[string]map[string]int{
			hostileJob: {"fail": 2},
			"good":     {"ok": 3},
			"picky":    {"refused": 1},
			"slow":     {"lost": 1, "running": 1},
		}
		if len(v.Jobs) != len(want) {
			t.Errorf("%d job rows, want %d: %+v", len(v.Jobs), len(want), v.Jobs)
		}
		for _, j := range v.Jobs {
			if !maps.Equal(j.Marks, want[j.Name]) {
				t.Errorf("job %q: marks %v, want %v", j.Name, j.Marks, want[j.Name])
			}
			if j.Hidden != 0 {
				t.Errorf("job %q: %d marks are laid out with no width", j.Name, j.Hidden)
			}
			if j.Capped {
				t.Errorf("job %q is said to be cut off: %s", j.Name, j.Summary)
			}
		}
		if len(v.Jobs) > 0 && v.Jobs[0].Name != hostileJob {
			t.Errorf("first row %q, want the rows by name", v.Jobs[0].Name)
		}
		if j := v.Jobs[len(v.Jobs)-1]; len(v.Jobs) == 0 || !slices.Equal(j.Counts, []string{"1 lost", "1 running"}) {
			t.Errorf("slow's counts: %q", j.Counts)
		}
	})

	t.Run("a step plot per variable with a step per version", func(t *testing.T) {
		if len(v.Vars) != 4 {
			t.Fatalf("%d variable plots, want flag, s, temp and x: %+v", len(v.Vars), v.Vars)
		}
		flag, s, temp, x := v.Vars[0], v.Vars[1], v.Vars[2], v.Vars[3]
		if flag.Name != "flag" || flag.Kind != "labelled" || flag.Steps != 4 || !strings.HasSuffix(flag.Labels[2], "(unset)") {
			t.Errorf("flag: %+v", flag)
		}
		if s.Name != "s" || s.Kind != "labelled" || s.Steps != 2 || !slices.Equal(s.Values, []string{"plain", hostileValue}) {
			t.Errorf("s: %+v", s)
		}
		if temp.Name != "temp" || temp.Kind != "numeric" || temp.Steps != 4 || temp.Before != 0 || len(temp.Levels) != 4 {
			t.Fatalf("temp: %+v", temp)
		}
		// 3, 7, 5, 1.5: y grows downwards.
		l := temp.Levels
		if !(l[1] < l[2] && l[2] < l[0] && l[0] < l[3]) {
			t.Errorf("temp's steps at heights %v do not follow 3, 7, 5, 1.5", l)
		}
		if !slices.Equal(temp.Values, []string{"1.5", "5", "7", "3"}) {
			t.Errorf("temp's table: %q", temp.Values)
		}
		if !strings.HasPrefix(temp.Current, "now 1.5;") {
			t.Errorf("temp's current value: %q", temp.Current)
		}
		if x.Name != "x" || x.Kind != "numeric" || x.Steps != 5 || !slices.Equal(x.Values, []string{"1", "2", "1", "2", "1"}) {
			t.Errorf("x: %+v", x)
		}
		if len(v.Quiet) != 0 {
			t.Errorf("variables listed as not set in the window: %q", v.Quiet)
		}
	})

	t.Run("a hostile job name and value are shown as text", func(t *testing.T) {
		if v.Scripts != 0 || len(saw.Dialogs) != 0 {
			t.Errorf("the page holds %d script elements; scripts opened dialogs %q", v.Scripts, saw.Dialogs)
		}
		if len(v.Jobs) == 0 || v.Jobs[0].Name != hostileJob || v.Jobs[0].Label != "runs of "+hostileJob {
			t.Errorf("the hostile job's row is not named %q: %+v", hostileJob, v.Jobs)
		}
		if len(v.Vars) > 1 && !strings.HasSuffix(v.Vars[1].Labels[0], hostileValue) {
			t.Errorf("the hostile value's step: %q", v.Vars[1].Labels)
		}
	})

	t.Run("the page fetches nothing", func(t *testing.T) {
		if !slices.Equal(saw.URLs, []string{"file://" + file}) {
			t.Errorf("the page made requests %q, want only its own file", saw.URLs)
		}
		refs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('*')].flatMap(e =>
			[...e.attributes].filter(a => /^(src|href|srcset|action|formaction|poster|data|xlink:href|background)$/i.test(a.name) || /url\(/i.test(a.value)).map(a => e.tagName + ' ' + a.name))`))
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != 0 {
			t.Errorf("elements refer elsewhere: %q", refs)
		}
	})
}

func TestReportSaysWhereItsBoundsCutTheWindow(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	h := newHome(t)
	h.writeJob("r.lua", `
when("false", "true", { name = "count" })
when("false", "sleep 1000", { name = "hold" })
`)
	h.start("--max-runs", "1")
	for _, n := range []string{"1", "2", "3", "4"} {
		h.ok("set", "--type", "int", "n="+n)
		h.startJob("count")
	}
	h.waitRuns("count", 4)
	// With one slot, a second run of hold waits in the queue: cancelled
	// there, it never ran; the first, cancelled while running, failed.
	first := h.running(h.startJob("hold").Serial)
	queued := h.startJob("hold")
	if queued.State != whenlua.RunQueued {
		t.Fatalf("the second run of hold: %+v, want queued", queued)
	}
	h.ok("cancel", strconv.FormatUint(queued.Serial, 10))
	h.ok("cancel", strconv.FormatUint(first.Serial, 10))
	h.waitRuns("hold", 2)

	file := filepath.Join(t.TempDir(), "report.html")
	h.ok("report", "--html", file, "--runs-per-job", "3", "--versions-per-var", "2")
	v, _ := load(t, ctx, file)
	if len(v.Jobs) != 2 {
		t.Fatalf("jobs: %+v, want count and hold", v.Jobs)
	}
	if c := v.Jobs[0]; c.Name != "count" || !maps.Equal(c.Marks, map[string]int{"ok": 3}) || !c.Capped || !strings.Contains(c.Summary, "only the newest 3 runs") {
		t.Errorf("count: %+v, want its 3 newest runs, said to be cut off", c)
	}
	if hold := v.Jobs[1]; hold.Name != "hold" || !maps.Equal(hold.Marks, map[string]int{"fail": 1, "cancelled": 1}) || hold.Capped {
		t.Errorf("hold: %+v, want a failure and a cancelled run", hold)
	}
	if len(v.Vars) != 1 || v.Vars[0].Steps != 2 || !v.Vars[0].Capped || !slices.Equal(v.Vars[0].Values, []string{"4", "3"}) {
		t.Errorf("vars: %+v, want the 2 newest versions of n, said to be cut off", v.Vars)
	}

	// Without a cut, nothing says so.
	h.ok("report", "--html", file, "--runs-per-job", "4", "--versions-per-var", "4")
	v, _ = load(t, ctx, file)
	if len(v.Jobs) != 2 || v.Jobs[0].Marks["ok"] != 4 || v.Jobs[0].Capped || len(v.Vars) != 1 || v.Vars[0].Steps != 4 || v.Vars[0].Capped {
		t.Errorf("a report within its bounds: %+v", v)
	}
}

func TestReportRefusesBadFlags(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	h.fails(2, []string{"report", "--days", "0"}, "--days must be between 1 and")
	h.fails(2, []string{"report", "--runs-per-job", "0"}, "--runs-per-job must be at least 1")
	h.fails(2, []string{"report", "extra"}, "takes no arguments")
	// Flags are checked before the daemon is asked: none runs here.
	h.fails(1, []string{"report"}, "no daemon is running")
}
