package host

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/whenlua/whenlua"
)

// metrics are the engine's Prometheus metrics, on a registry of their own
// (the process's go_* and process_* are added by metricsHandler).
// Counters and histograms are counted where their events happen, on the
// engine goroutine; gauges of the engine's state are read from it at each
// scrape (stateCollector). Job labels are those of loaded jobs only: a job
// that leaves takes its series with it (forgetJob), so a renamed job does
// not linger.
type metrics struct {
	reg          *prometheus.Registry
	runsStarted  *prometheus.CounterVec   // job
	runsFinished *prometheus.CounterVec   // job, result
	runDuration  *prometheus.HistogramVec // job
	sets         *prometheus.CounterVec   // origin (a kind: whenlua.OriginKind)
	evalSeconds  prometheus.Histogram
	condErrors   *prometheus.CounterVec // job
}

// Run results, the values of the result label of whenlua_runs_finished_total.
const (
	resultSuccess    = "success"     // exited 0
	resultFailure    = "failure"     // exited non-zero or was killed by a signal
	resultTimeout    = "timeout"     // stopped by its timeout option
	resultCancelled  = "cancelled"   // cancelled (whenlua cancel, the daemon stopping), queued or running
	resultRefused    = "refused"     // its pre refused it
	resultNotStarted = "not_started" // its process could not be started
	resultLost       = "lost"        // in flight when the daemon died
)

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		runsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenlua_runs_started_total",
			Help: "Runs whose process started, by job.",
		}, []string{"job"}),
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenlua_runs_finished_total",
			Help: "Run attempts that ended, by job and result (success, failure, timeout, cancelled, refused, not_started, lost).",
		}, []string{"job", "result"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "whenlua_run_duration_seconds",
			Help:    "How long the processes of finished runs ran, by job.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 11), // 10 ms to about 3 h
		}, []string{"job"}),
		sets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenlua_sets_total",
			Help: "Sets of variables applied, by origin (cli, whisper, load, pre, post, on_silence, other).",
		}, []string{"origin"}),
		evalSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "whenlua_condition_evaluation_seconds",
			Help:    "How long one evaluation of a when-job's condition took.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10), // 10 µs to about 2.6 s
		}),
		condErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whenlua_condition_errors_total",
			Help: "Evaluations of a when-job's condition that raised an error, by job.",
		}, []string{"job"}),
	}
	m.reg.MustRegister(m.runsStarted, m.runsFinished, m.runDuration, m.sets, m.evalSeconds, m.condErrors)
	return m
}

// forgetJob removes every series of the job named name.
func (m *metrics) forgetJob(name string) {
	l := prometheus.Labels{"job": name}
	m.runsStarted.DeletePartialMatch(l)
	m.runsFinished.DeletePartialMatch(l)
	m.runDuration.DeletePartialMatch(l)
	m.condErrors.DeletePartialMatch(l)
}

// countSet counts a set applied from origin; a test's dry run is none.
func (st *state) countSet(origin string) {
	if !st.dryRun {
		st.e.metrics.sets.WithLabelValues(whenlua.OriginKind(origin)).Inc()
	}
}

// countEval counts one evaluation of j's condition that began at start
// (on the real clock: it measures work, not schedule) and failed with err.
func (st *state) countEval(j *job, start time.Time, err error) {
	if st.dryRun {
		return
	}
	st.e.metrics.evalSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		st.e.metrics.condErrors.WithLabelValues(j.name).Inc()
	}
}

// countStarted counts a run whose process started.
func (st *state) countStarted(r whenlua.Run) {
	if st.jobs[r.Job] != nil {
		st.e.metrics.runsStarted.WithLabelValues(r.Job).Inc()
	}
}

// countFinished counts a run attempt that ended with result. A job no
// longer loaded is not counted: its series are gone.
func (st *state) countFinished(r whenlua.Run, result string) {
	if st.jobs[r.Job] != nil {
		st.e.metrics.runsFinished.WithLabelValues(r.Job, result).Inc()
	}
}

// countRan observes how long the process of a run of the job named job ran.
func (st *state) countRan(job string, d time.Duration) {
	if st.jobs[job] != nil {
		st.e.metrics.runDuration.WithLabelValues(job).Observe(d.Seconds())
	}
}

// stateCollector reads the gauges of the engine's state through the
// engine's request channel, with the scrape's context, and the store's
// size from the store.
type stateCollector struct {
	e   *Engine
	ctx context.Context
}

var (
	descRunning = prometheus.NewDesc("whenlua_runs_running",
		"Runs whose process is running.", nil, nil)
	descQueued = prometheus.NewDesc("whenlua_runs_queued",
		"Runs waiting for a free slot (--max-runs).", nil, nil)
	descLoadError = prometheus.NewDesc("whenlua_job_file_load_error",
		"1 when the job file's last version failed to load (its previous version, if any, stays active), else 0.", []string{"file"}, nil)
	descLastSuccess = prometheus.NewDesc("whenlua_job_last_success_timestamp_seconds",
		"When the job's last successful run ended, in Unix seconds; absent until one is known.", []string{"job"}, nil)
	descSilent = prometheus.NewDesc("whenlua_job_silent",
		"1 when the job's silence alarm is raised (no successful run within its expect option), else 0; jobs with expect only.", []string{"job"}, nil)
	descStoreSize = prometheus.NewDesc("whenlua_store_size_bytes",
		"The store's size on disk as badger counts it, by part (lsm, vlog).", []string{"part"}, nil)
)

// stateGauges is what a scrape reads of the engine's state.
type stateGauges struct {
	running, queued int
	fileErrors      map[string]bool      // file name -> failed to load
	lastSuccess     map[string]time.Time // job -> last success
	silent          map[string]bool      // job with expect -> silent
}

func (st *state) gauges() stateGauges {
	g := stateGauges{
		running:     len(st.running) - len(st.runq.waiting),
		queued:      len(st.runq.waiting),
		fileErrors:  map[string]bool{},
		lastSuccess: map[string]time.Time{},
		silent:      map[string]bool{},
	}
	for path, ent := range st.files {
		if ent.cur != nil || ent.err != "" {
			g.fileErrors[fileLabel(path)] = ent.err != ""
		}
	}
	for name, j := range st.jobs {
		s := st.states[name]
		if s != nil && !s.LastSuccess.IsZero() {
			g.lastSuccess[name] = s.LastSuccess
		}
		if j.lj.Expect > 0 {
			g.silent[name] = s != nil && !s.SilentSince.IsZero()
		}
	}
	return g
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRunning, descQueued, descLoadError, descLastSuccess, descSilent, descStoreSize} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	var g stateGauges
	if err := c.e.do(c.ctx, func() { g = c.e.st.gauges() }); err != nil {
		ch <- prometheus.NewInvalidMetric(descRunning, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(g.running))
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(g.queued))
	for file, failed := range g.fileErrors {
		ch <- prometheus.MustNewConstMetric(descLoadError, prometheus.GaugeValue, boolValue(failed), file)
	}
	for job, t := range g.lastSuccess {
		ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue, float64(t.UnixNano())/1e9, job)
	}
	for job, silent := range g.silent {
		ch <- prometheus.MustNewConstMetric(descSilent, prometheus.GaugeValue, boolValue(silent), job)
	}
	if sized, ok := c.e.store.(interface {
		Size() (lsm, vlog int64, err error)
	}); ok {
		lsm, vlog, err := sized.Size()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descStoreSize, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(descStoreSize, prometheus.GaugeValue, float64(lsm), "lsm")
		ch <- prometheus.MustNewConstMetric(descStoreSize, prometheus.GaugeValue, float64(vlog), "vlog")
	}
}

// fileLabel is the file label of the job file at path: its name, quoted
// when it is not UTF-8 (a label value must be, or the scrape fails), which
// tells it from every other job file's, as no quoted name ends in .lua.
func fileLabel(path string) string {
	name := filepath.Base(path)
	if !utf8.ValidString(name) {
		return strconv.Quote(name)
	}
	return name
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MetricsGatherer gathers the engine's metrics for one scrape: its
// counters and histograms, and the gauges of its state, read under ctx
// (the scrape's). A scrape while the engine stops fails.
func (e *Engine) MetricsGatherer(ctx context.Context) prometheus.Gatherer {
	scrape := prometheus.NewRegistry()
	scrape.MustRegister(stateCollector{e: e, ctx: ctx})
	return prometheus.Gatherers{e.metrics.reg, scrape}
}

// MetricsHandler serves the engine's metrics in Prometheus' formats, as
// the daemon does.
func (e *Engine) MetricsHandler() http.Handler {
	return metricsHandler(e, e.log)
}

// metricsHandler serves, at each scrape, what b gathers under the
// scrape's context, with the process's go_* and process_* metrics, which
// b must not have (an engine's registry, or a cluster node's and its
// engine's, have none). Errors are logged on log and fail the scrape.
func metricsHandler(b metricsBackend, log *slog.Logger) http.Handler {
	proc := prometheus.NewRegistry()
	proc.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		promhttp.HandlerFor(prometheus.Gatherers{proc, b.MetricsGatherer(r.Context())}, opts).ServeHTTP(w, r)
	})
}
