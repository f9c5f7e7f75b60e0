package main

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/whenlua/whenlua"
)

// The report's page is one html/template, so that every job name, origin
// and value is escaped as text wherever it lands (HTML text, SVG titles,
// attributes); the geometry of its SVG is computed here.
//
//go:embed report.html.tmpl
var reportTemplate string

var reportPage = template.Must(template.New("report").Parse(reportTemplate))

// Geometry of the plots, in SVG user units (pixels at scale 1).
const (
	plotWidth   = 720.0 // the window's width in every timeline and plot
	plotLeft    = 70.0  // room for a plot's scale on its left
	plotHeight  = 90.0  // a numeric plot's height, between its margins
	plotMargin  = 8.0
	bandHeight  = 22.0 // a labelled step plot's band
	minRunWidth = 2.0  // a short run still shows
	charWidth   = 6.5  // of the plots' labels, to cut a label to its step
	maxShownLen = 200  // bytes of a value shown; longer ones are cut
)

// reportView is what the template shows.
type reportView struct {
	From, To, Zone string
	Days           int
	Home, Version  string
	Width, Left    float64
	Axis           []tick
	Jobs           []pageJob
	JobsLeft       int
	RunsCut        bool
	MaxRuns        int
	Plots          []pageVar
	Quiet          []quietVar
	VarsLeft       int
	RunsPerJob     int
}

type tick struct {
	X     float64
	Label string
}

type pageJob struct {
	Name, Kind, Spec string
	Counts           []count
	Durations        string
	Marks            []mark
	Capped           bool
}

type count struct{ Class, Text string }

type mark struct {
	Class   string
	X, W    float64
	Title   string
	Running bool
}

type pageVar struct {
	Name, Current string
	Numeric       bool
	Height        float64
	AxisBottom    float64 // the baseline of the day labels under the plot
	SVGWidth      float64
	Top, Bottom   string // a numeric plot's scale
	Before        *step
	Steps         []step
	Risers        string // a numeric plot's vertical moves, as path data
	Rows          []versionRow
	Capped        bool
	Limit         int
}

// step is one version's stretch of a plot, from its time to the next
// version's (or the end of the window).
type step struct {
	Class    string
	Numeric  bool
	X1, X2   float64
	Width    float64 // X2-X1
	Y        float64
	Label    string // a labelled step's text, cut to its width
	Title    string
	Unset    bool
	LabelX   float64
	HasLabel bool
}

type versionRow struct{ Time, Origin, Value string }

type quietVar struct{ Name, Value, Since string }

// renderReport writes d as the page.
func renderReport(w io.Writer, d reportData) error {
	return reportPage.Execute(w, buildPage(d))
}

func buildPage(d reportData) reportView {
	p := reportView{
		From: fmtTime(d.From), To: fmtTime(d.To), Zone: d.To.Local().Format("MST (-07:00)"),
		Days: d.Days, Home: d.Home, Version: d.GeneratedBy,
		Width: plotWidth, Left: plotLeft,
		JobsLeft: d.JobsLeft, VarsLeft: d.VarsLeft, RunsCut: d.RunsCut, MaxRuns: d.MaxRuns,
		RunsPerJob: d.RunsPerJob,
	}
	x := func(t time.Time) float64 {
		f := float64(t.Sub(d.From)) / float64(d.To.Sub(d.From)) * plotWidth
		return round1(min(max(f, 0), plotWidth))
	}
	p.Axis = dayTicks(d.From, d.To, x)
	for _, j := range d.Jobs {
		p.Jobs = append(p.Jobs, buildJob(j, d.To, x))
	}
	for _, v := range d.Vars {
		if len(v.Versions) == 0 {
			q := quietVar{Name: v.Name, Value: shown(v.Current), Since: "-"}
			if v.Before != nil {
				q.Since = fmtTime(v.Before.Time)
			}
			p.Quiet = append(p.Quiet, q)
			continue
		}
		p.Plots = append(p.Plots, buildVar(v, d.To, x))
	}
	return p
}

// dayTicks marks each local midnight in the window, labelling at most
// about fourteen of them.
func dayTicks(from, to time.Time, x func(time.Time) float64) []tick {
	every := max(1, int(to.Sub(from)/(14*24*time.Hour))+1)
	var out []tick
	lf := from.Local()
	day := time.Date(lf.Year(), lf.Month(), lf.Day()+1, 0, 0, 0, 0, lf.Location())
	for i := 0; day.Before(to); i++ {
		t := tick{X: x(day)}
		if i%every == 0 {
			t.Label = day.Format("Mon 2 Jan")
		}
		out = append(out, t)
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, day.Location())
	}
	return out
}

// runClass sorts a run into the page's kinds: ok, fail, lost, cancelled,
// refused, running (queued runs included).
func runClass(r whenlua.Run) string {
	switch r.State {
	case whenlua.RunDone:
		if r.Code == 0 && r.Signal == "" {
			return "ok"
		}
		return "fail"
	case whenlua.RunFailed:
		return "fail"
	case whenlua.RunLost:
		return "lost"
	case whenlua.RunCancelled:
		return "cancelled"
	case whenlua.RunRefused:
		return "refused"
	case whenlua.RunRunning, whenlua.RunQueued:
		return "running"
	}
	return "fail"
}

// runClasses are the kinds in the order the counts list them.
var runClasses = []string{"ok", "fail", "lost", "cancelled", "refused", "running"}

func buildJob(j reportJob, now time.Time, x func(time.Time) float64) pageJob {
	pj := pageJob{Name: j.Name, Kind: j.Kind, Spec: j.Spec, Capped: j.Capped}
	if j.Kind == "" {
		pj.Kind = "not loaded"
	}
	n := map[string]int{}
	var durs []time.Duration
	// Oldest first, so that a newer run is drawn over an older one.
	for _, r := range slices.Backward(j.Runs) {
		c := runClass(r)
		n[c]++
		start, end := runSpan(r, now)
		x1, x2 := x(start), x(end)
		w := max(x2-x1, minRunWidth)
		if x1+w > plotWidth {
			x1 = plotWidth - w
		}
		what := outcome(r)
		if r.State == whenlua.RunDone && r.Signal == "" {
			what = "exit " + what
		}
		title := fmt.Sprintf("run %d · %s · started %s", r.Serial, what, fmtTime(start))
		if !r.End.IsZero() {
			title += " · took " + fmtDuration(r.Duration())
			if r.State == whenlua.RunDone {
				durs = append(durs, r.Duration())
			}
		}
		if r.Error != "" {
			title += " · " + shortText(r.Error)
		}
		pj.Marks = append(pj.Marks, mark{Class: c, X: round1(x1), W: round1(w), Title: title})
	}
	for _, c := range runClasses {
		if n[c] > 0 {
			pj.Counts = append(pj.Counts, count{Class: c, Text: fmt.Sprintf("%d %s", n[c], c)})
		}
	}
	if len(durs) > 0 {
		slices.Sort(durs)
		pj.Durations = fmt.Sprintf("median %s, longest %s", fmtDuration(durs[len(durs)/2]), fmtDuration(durs[len(durs)-1]))
	}
	return pj
}

// numeric tells whether a variable's versions are numbers (or unset), to
// be plotted on a scale; any other is shown as labelled steps.
func numeric(vs []whenlua.Version) bool {
	any := false
	for _, v := range vs {
		switch v.Value.T {
		case whenlua.TypeInt, whenlua.TypeFloat:
			any = true
		case whenlua.TypeNil:
		default:
			return false
		}
	}
	return any
}

func number(v whenlua.Value) float64 {
	if v.T == whenlua.TypeInt {
		return float64(v.I)
	}
	return v.F
}

func buildVar(v reportVar, now time.Time, x func(time.Time) float64) pageVar {
	all := v.Versions
	if v.Before != nil {
		all = append([]whenlua.Version{*v.Before}, v.Versions...)
	}
	pv := pageVar{Name: v.Name, Current: shown(v.Current), Numeric: numeric(all), Capped: v.Capped, Limit: v.Limit, SVGWidth: plotLeft + plotWidth}
	for _, ver := range slices.Backward(v.Versions) {
		pv.Rows = append(pv.Rows, versionRow{Time: fmtTime(ver.Time), Origin: ver.Origin, Value: shown(ver.Value)})
	}
	y := func(whenlua.Value) float64 { return plotMargin + bandHeight/2 }
	pv.Height = bandHeight + 2*plotMargin
	if pv.Numeric {
		lo, hi := numberRange(all)
		pv.Height = plotHeight + 2*plotMargin
		pv.Top, pv.Bottom = strconv.FormatFloat(hi, 'g', 6, 64), strconv.FormatFloat(lo, 'g', 6, 64)
		y = func(val whenlua.Value) float64 {
			// In halves: the span of two large floats of opposite signs
			// overflows, half of it does not.
			return round1(plotMargin + (hi/2-number(val)/2)/(hi/2-lo/2)*plotHeight)
		}
	}
	mk := func(ver whenlua.Version, next time.Time, i int) step {
		s := step{X1: x(ver.Time), X2: x(next), Y: y(ver.Value), Unset: ver.Value.IsNil(), Numeric: pv.Numeric,
			Title: fmtTime(ver.Time) + " · " + ver.Origin + " · " + shown(ver.Value)}
		// A step shorter than a run's mark is drawn as wide, ending at
		// the window's end at the latest.
		if s.X2-s.X1 < minRunWidth {
			s.X1 = min(s.X1, plotWidth-minRunWidth)
			s.X2 = s.X1 + minRunWidth
		}
		s.Width = round1(s.X2 - s.X1)
		switch {
		case s.Unset:
			s.Class = "unset"
			s.Y = round1(pv.Height - plotMargin)
		case pv.Numeric:
			s.Class = "num"
		case ver.Value.T == whenlua.TypeBool:
			s.Class = strconv.FormatBool(ver.Value.B)
		default:
			s.Class = "b" + strconv.Itoa(i%2)
		}
		if !pv.Numeric {
			s.LabelX = s.X1 + 3
			s.Label = cutLabel(shown(ver.Value), s.X2-s.X1-6)
			s.HasLabel = s.Label != ""
		}
		return s
	}
	if v.Before != nil {
		first := now
		if len(v.Versions) > 0 {
			first = v.Versions[0].Time
		}
		b := mk(*v.Before, first, 1)
		b.X1, b.LabelX, b.Width = 0, 3, b.X2
		if !pv.Numeric {
			b.Label = cutLabel(shown(v.Before.Value), b.X2-6)
			b.HasLabel = b.Label != ""
		}
		pv.Before = &b
	}
	var risers strings.Builder
	prev := pv.Before
	for i, ver := range v.Versions {
		next := now
		if i+1 < len(v.Versions) {
			next = v.Versions[i+1].Time
		}
		s := mk(ver, next, i)
		pv.Steps = append(pv.Steps, s)
		if pv.Numeric && prev != nil && !prev.Unset && !s.Unset {
			fmt.Fprintf(&risers, "M%g %gV%g", s.X1, prev.Y, s.Y)
		}
		prev = &pv.Steps[len(pv.Steps)-1]
	}
	pv.Risers = risers.String()
	pv.AxisBottom = pv.Height + 13
	return pv
}

// numberRange is the scale of a numeric plot: the smallest and largest
// values, apart by at least a little so that a constant is drawn mid-way.
func numberRange(vs []whenlua.Version) (float64, float64) {
	first := true
	var lo, hi float64
	for _, v := range vs {
		if v.Value.IsNil() {
			continue
		}
		f := number(v.Value)
		if first {
			lo, hi, first = f, f, false
		}
		lo, hi = min(lo, f), max(hi, f)
	}
	if lo == hi {
		pad := max(1, math.Abs(lo)/10)
		lo, hi = max(lo-pad, -math.MaxFloat64), min(hi+pad, math.MaxFloat64)
	}
	return lo, hi
}

// round1 rounds to a tenth of a unit, which keeps the page short.
func round1(f float64) float64 { return math.Round(f*10) / 10 }

// cutValue cuts a long string value as shortText does, so that a report
// keeps a bounded amount of each version.
func cutValue(v whenlua.Value) whenlua.Value {
	if v.T == whenlua.TypeString {
		v.S = shortText(v.S)
	}
	return v
}

// shortText cuts s after maxShownLen bytes, on a character boundary,
// saying how long it was.
func shortText(s string) string {
	if len(s) <= maxShownLen {
		return s
	}
	cut := maxShownLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

// cutLabel fits s in width units, ending it with … when cut; "" when not
// even two characters fit.
func cutLabel(s string, width float64) string {
	n := int(width / charWidth)
	if n < 2 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
