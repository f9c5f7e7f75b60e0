package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/whenlua/whenlua"
	"github.com/whenlua/whenlua/internal/metricstest"
)

// status returns `whenlua status --json`.
func (h *home) status() whenlua.Status {
	h.t.Helper()
	var st whenlua.Status
	if err := json.Unmarshal([]byte(h.ok("status", "--json")), &st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// scrape gets http://addr/metrics in the text format and parses it.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	return metricstest.Parse(t, resp.Body)
}

// sample reads one series of a scrape.
var sample = metricstest.Value

func TestMetricsCountRunsAndSetsOfARealDaemon(t *testing.T) {
	h := newHome(t)
	h.writeJob("m.lua", `
when("go == 1", "exit 0", { name = "good" })
when("go == 2", "exit 3", { name = "bad" })
`)
	h.start("--metrics=127.0.0.1:0")
	addr := h.status().Metrics
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("status gives the metrics address %q, want the one bound", addr)
	}
	if log, _ := os.ReadFile(filepath.Join(h.dir, "daemon.log")); !strings.Contains(string(log), "addr="+addr) {
		t.Errorf("the daemon log does not name the metrics address %s:\n%s", addr, log)
	}
	if out := h.ok("status"); !strings.Contains(out, "metrics:  http://"+addr+"/metrics") {
		t.Errorf("status does not show the metrics address:\n%s", out)
	}
	finished := func(n int) func() bool {
		return func() bool { return strings.Count(h.ok("log"), "\n") == n }
	}
	h.ok("set", "--type", "int", "go=1")
	waitFor(t, "the run of good", finished(1))
	h.ok("set", "--type", "int", "go=2")
	waitFor(t, "the run of bad", finished(2))

	fams := scrape(t, addr)
	metricstest.Check(t, fams, []metricstest.Series{
		{Name: "whenlua_runs_started_total", Labels: "job=good", Want: 1},
		{Name: "whenlua_runs_started_total", Labels: "job=bad", Want: 1},
		{Name: "whenlua_runs_finished_total", Labels: "job=good,result=success", Want: 1},
		{Name: "whenlua_runs_finished_total", Labels: "job=bad,result=failure", Want: 1},
		{Name: "whenlua_run_duration_seconds", Labels: "job=good", Want: 1},
		{Name: "whenlua_run_duration_seconds", Labels: "job=bad", Want: 1},
		{Name: "whenlua_sets_total", Labels: "origin=cli", Want: 2},
		{Name: "whenlua_runs_running", Labels: "", Want: 0},
		{Name: "whenlua_runs_queued", Labels: "", Want: 0},
		{Name: "whenlua_job_file_load_error", Labels: "file=m.lua", Want: 0},
		// The load evaluates both jobs once; each set twice (the fixpoint's
		// second pass finds nothing new).
		{Name: "whenlua_condition_evaluation_seconds", Labels: "", Want: 2 + 4 + 4},
	})
	for _, absent := range []struct{ name, labels string }{
		{"whenlua_runs_finished_total", "job=good,result=failure"},
		{"whenlua_runs_finished_total", "job=bad,result=success"},
		{"whenlua_job_last_success_timestamp_seconds", "job=bad"},
		{"whenlua_condition_errors_total", "job=good"},
	} {
		if v, ok := sample(fams, absent.name, absent.labels); ok {
			t.Errorf("%s{%s} = %v, want no such series", absent.name, absent.labels, v)
		}
	}
	runs := h.client()
	rs, err := runs.Log(context.Background(), "good", 1)
	if err != nil || len(rs) != 1 {
		t.Fatalf("log of good: %v %v", rs, err)
	}
	if v, ok := sample(fams, "whenlua_job_last_success_timestamp_seconds", "job=good"); !ok || v != float64(rs[0].End.UnixNano())/1e9 {
		t.Errorf("last success of good = %v (present %v), want %v", v, ok, float64(rs[0].End.UnixNano())/1e9)
	}
	for _, part := range []string{"lsm", "vlog"} {
		if _, ok := sample(fams, "whenlua_store_size_bytes", "part="+part); !ok {
			t.Errorf("no store size of part %s", part)
		}
	}
}

func TestAMetricsAddressInUseFailsTheStart(t *testing.T) {
	h := newHome(t)
	h.start("--metrics=127.0.0.1:0")
	addr := h.status().Metrics
	other := newHome(t)
	other.fails(1, []string{"daemon", "start", "--metrics=" + addr}, "--metrics", "address already in use")
	other.fails(2, []string{"daemon", "start", "--metrics=9090"}, "--metrics", "HOST:PORT")
}

func TestStatusShowsASilentJobUntilASuccess(t *testing.T) {
	h := newHome(t)
	h.writeJob("s.lua", `every("1 day", "true", { name = "nightly", expect = "1s" })`)
	h.start("--metrics=127.0.0.1:0")
	waitFor(t, "the silence of nightly", func() bool { return len(h.status().Silent) == 1 })
	st := h.status()
	if s := st.Silent[0]; s.Job != "nightly" || s.Expect != time.Second || !s.LastSuccess.IsZero() || s.SilentSince.IsZero() {
		t.Fatalf("silent = %+v", s)
	}
	if out := h.ok("status"); !strings.Contains(out, "silent (no successful run within expect):") || !strings.Contains(out, "nightly\texpect 1s\tsilent since") {
		t.Errorf("status does not show the silence:\n%s", out)
	}
	if v, ok := sample(scrape(t, st.Metrics), "whenlua_job_silent", "job=nightly"); !ok || v != 1 {
		t.Errorf("whenlua_job_silent{job=nightly} = %v (present %v), want 1", v, ok)
	}
	if log, _ := os.ReadFile(filepath.Join(h.dir, "daemon.log")); strings.Count(string(log), "job silent") != 1 {
		t.Errorf("want one log line of the silence:\n%s", log)
	}
	// The alarm lasts until a success: across a reload (now with a window
	// no test waits out) and a restart.
	before := st.Silent[0].SilentSince
	h.writeJob("s.lua", `every("1 day", "true", { name = "nightly", expect = "1h" })`)
	h.ok("reload")
	h.ok("daemon", "restart", "--metrics=127.0.0.1:0")
	st = h.status()
	if len(st.Silent) != 1 || !st.Silent[0].SilentSince.Equal(before) || st.Silent[0].Expect != time.Hour {
		t.Fatalf("after a reload and a restart: silent = %+v, want silent since %v", st.Silent, before)
	}
	h.ok("start", "nightly")
	waitFor(t, "the end of the silence", func() bool { return len(h.status().Silent) == 0 })
	if v, ok := sample(scrape(t, h.status().Metrics), "whenlua_job_silent", "job=nightly"); !ok || v != 0 {
		t.Errorf("after a success whenlua_job_silent{job=nightly} = %v (present %v), want 0", v, ok)
	}
}
