// Package metricstest reads what a scrape of /metrics gave, for the tests
// of the daemon's metrics in host and of the command line.
package metricstest

import (
	"io"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Parse parses a scrape in the text format, failing t if it does not parse.
func Parse(t testing.TB, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// Series is a series a scrape must have, and its value (Value).
type Series struct {
	Name, Labels string
	Want         float64
}

// Check reports, as errors of t, each series of want that fams lacks or
// that has another value.
func Check(t testing.TB, fams map[string]*dto.MetricFamily, want []Series) {
	t.Helper()
	for _, c := range want {
		if got, ok := Value(fams, c.Name, c.Labels); !ok || got != c.Want {
			t.Errorf("%s{%s} = %v (present %v), want %v", c.Name, c.Labels, got, ok, c.Want)
		}
	}
}

// Value is the value of the series of family name with exactly labels
// ("k=v,k=v", sorted as the exposition sorts them); a histogram gives its
// count. ok is false when there is no such series.
func Value(fams map[string]*dto.MetricFamily, name, labels string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		var got []string
		for _, lp := range m.Label {
			got = append(got, lp.GetName()+"="+lp.GetValue())
		}
		if strings.Join(got, ",") != labels {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}
