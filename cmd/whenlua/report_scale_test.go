package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
)

// Values far apart, or at the edge of what a float holds, are still drawn
// inside the plot: the scale's span used to overflow to +Inf and put the
// steps at NaN, where a browser draws nothing.
func TestReportScalesExtremeNumbersInsideThePlot(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	from := now.AddDate(0, 0, -1)
	x := func(t time.Time) float64 { return round1(float64(t.Sub(from)) / float64(now.Sub(from)) * plotWidth) }
	for name, vals := range map[string][]whenlua.Value{
		"far apart":   {whenlua.Float(1e308), whenlua.Float(-1e308), whenlua.Float(0)},
		"the largest": {whenlua.Float(math.MaxFloat64), whenlua.Float(math.MaxFloat64)},
		"the least":   {whenlua.Float(-math.MaxFloat64)},
		"ints":        {whenlua.Int(math.MaxInt64), whenlua.Int(math.MinInt64)},
	} {
		v := reportVar{Name: "v"}
		for i, val := range vals {
			v.Versions = append(v.Versions, whenlua.Version{Time: from.Add(time.Duration(i+1) * time.Hour), Origin: "cli", Value: val})
		}
		pv := buildVar(v, now, x)
		if !pv.Numeric {
			t.Fatalf("%s: not numeric", name)
		}
		for _, s := range pv.Steps {
			if math.IsNaN(s.Y) || s.Y < plotMargin || s.Y > plotMargin+plotHeight {
				t.Errorf("%s: a step of %s at y=%v, outside [%v, %v]", name, s.Title, s.Y, plotMargin, plotMargin+plotHeight)
			}
		}
		if strings.Contains(pv.Risers, "NaN") || strings.Contains(pv.Top+pv.Bottom, "Inf") {
			t.Errorf("%s: risers %q, scale %s to %s", name, pv.Risers, pv.Bottom, pv.Top)
		}
	}
}
