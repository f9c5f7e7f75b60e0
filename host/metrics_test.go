package host

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/metricstest"
	"github.com/whenlua/whenlua/persist"
)

// scrapeMetrics scrapes h's /metrics in the text format and parses it.
func scrapeMetrics(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return metricstest.Parse(t, rec.Body)
}

// metricValue reads one series of a scrape.
var metricValue = metricstest.Value

// jobSeries lists the series of the metrics a scrape gave that carry the
// label job=name.
func jobSeries(fams map[string]*dto.MetricFamily, name string) []string {
	var out []string
	for fname, f := range fams {
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == "job" && lp.GetValue() == name {
					out = append(out, fname)
				}
			}
		}
	}
	return out
}

func TestAJobThatLeavesTakesItsSeriesWithIt(t *testing.T) {
	p := testPaths(t, t.TempDir())
	const file = `when("n > 1", "exit ${code:-0}", { name = "%s", expect = "1h" })`
	writeFile(t, p.JobsDir+"/a.lua", strings.Replace(file, "%s", "old", 1))
	writeFile(t, p.JobsDir+"/b.lua", `every("1 hour", "true", { name = "keeper" })`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	te.set("s", "x")   // n unset: the condition raises
	te.set("n", 0)     // false, no error
	runOnce(te, "old") // a success
	te.set("code", 2)
	runOnce(te, "old") // a failure
	runOnce(te, "keeper")

	fams := scrapeMetrics(t, te.MetricsHandler())
	metricstest.Check(t, fams, []metricstest.Series{
		{Name: "whenlua_runs_started_total", Labels: "job=old", Want: 2},
		{Name: "whenlua_runs_finished_total", Labels: "job=old,result=success", Want: 1},
		{Name: "whenlua_runs_finished_total", Labels: "job=old,result=failure", Want: 1},
		{Name: "whenlua_run_duration_seconds", Labels: "job=old", Want: 2},
		{Name: "whenlua_condition_errors_total", Labels: "job=old", Want: 1}, // at load, n unset
		{Name: "whenlua_job_silent", Labels: "job=old", Want: 0},
		{Name: "whenlua_runs_finished_total", Labels: "job=keeper,result=success", Want: 1},
		{Name: "whenlua_sets_total", Labels: "origin=cli", Want: 3},
		{Name: "whenlua_job_file_load_error", Labels: "file=a.lua", Want: 0},
		{Name: "whenlua_runs_running", Labels: "", Want: 0},
		{Name: "whenlua_runs_queued", Labels: "", Want: 0},
	})
	if _, ok := metricValue(fams, "whenlua_job_last_success_timestamp_seconds", "job=old"); !ok {
		t.Error("no last success of old")
	}

	// Renamed: the old name's series are gone, the new one has its own.
	writeFile(t, p.JobsDir+"/a.lua", strings.Replace(file, "%s", "new", 1))
	te.reload()
	fams = scrapeMetrics(t, te.MetricsHandler())
	if s := jobSeries(fams, "old"); len(s) != 0 {
		t.Errorf("series of the renamed job linger: %v", s)
	}
	if v, ok := metricValue(fams, "whenlua_job_silent", "job=new"); !ok || v != 0 {
		t.Errorf("whenlua_job_silent{job=new} = %v (present %v)", v, ok)
	}
	if v, ok := metricValue(fams, "whenlua_runs_finished_total", "job=keeper,result=success"); !ok || v != 1 {
		t.Errorf("the other job's series went too: %v %v", v, ok)
	}
	// A file that fails to load is 1 until it loads again.
	writeFile(t, p.JobsDir+"/a.lua", "every(")
	te.reload()
	if v, ok := metricValue(scrapeMetrics(t, te.MetricsHandler()), "whenlua_job_file_load_error", "file=a.lua"); !ok || v != 1 {
		t.Errorf("load error of a.lua = %v (present %v), want 1", v, ok)
	}
}

func TestRunResultsAreCountedByKind(t *testing.T) {
	p := testPaths(t, t.TempDir())
	writeFile(t, p.JobsDir+"/r.lua", `
when("false", "true", { name = "j", pre = function() return false, "not now" end })
when("false", "sleep 5", { name = "slow", timeout = 0.2 })
`)
	te := openTestEngine(t, p, NewFakeClock(testEpoch))
	// What a daemon killed with SIGKILL leaves: runs committed as running,
	// of a loaded job and of one no file declares any more.
	recs := []whenlua.Run{
		{Serial: 1, Job: "j", State: whenlua.RunRunning, Start: testEpoch},
		{Serial: 2, Job: "gone", State: whenlua.RunQueued, Start: testEpoch},
	}
	if err := te.store.Commit(&persist.Batch{Runs: recs, Serial: 2}); err != nil {
		t.Fatal(err)
	}
	te = te.restart()
	if _, err := te.Start(context.Background(), "j"); err == nil {
		t.Fatal("pre did not refuse")
	}
	runOnce(te, "slow")
	fams := scrapeMetrics(t, te.MetricsHandler())
	for _, c := range []struct {
		labels string
		want   float64
	}{
		{"job=j,result=lost", 1},
		{"job=j,result=refused", 1},
		{"job=slow,result=timeout", 1},
	} {
		if got, ok := metricValue(fams, "whenlua_runs_finished_total", c.labels); !ok || got != c.want {
			t.Errorf("whenlua_runs_finished_total{%s} = %v (present %v), want %v", c.labels, got, ok, c.want)
		}
	}
	if s := jobSeries(fams, "gone"); len(s) != 0 {
		t.Errorf("series of a job not loaded: %v", s)
	}
	if v, ok := metricValue(fams, "whenlua_runs_started_total", "job=j"); ok {
		t.Errorf("a refused run counted as started: %v", v)
	}
}
