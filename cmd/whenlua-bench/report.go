package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the table. ok is nil when the row has no target of
// its own (it only gives a figure other rows are compared with).
type row struct {
	key      string // sort key: the target it belongs to, P1..P7
	name     string
	figure   string
	baseline string
	ratio    string
	target   string
	ok       *bool
	note     string // printed under the table, after the row's key
}

func verdict(ok bool) *bool { return &ok }

// sortRows orders the rows by key, the cluster rows (C1, C2) after the
// others.
func sortRows(rows []row) {
	slices.SortStableFunc(rows, func(a, b row) int {
		if ca, cb := strings.HasPrefix(a.key, "C"), strings.HasPrefix(b.key, "C"); ca != cb {
			if ca {
				return 1
			}
			return -1
		}
		return strings.Compare(a.key, b.key)
	})
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tfigure\tbaseline\tratio\ttarget\tresult")
	for _, r := range rows {
		res := "-"
		if r.ok != nil {
			res = "pass"
			if !*r.ok {
				res = "MISS"
			}
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\n", r.key, r.name, dash(r.figure), dash(r.baseline), dash(r.ratio), dash(r.target), res)
	}
	tw.Flush()
	first := true
	for _, r := range rows {
		if r.note == "" {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nnotes:")
			first = false
		}
		fmt.Fprintf(w, "  %s: %s\n", r.key, r.note)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// percentile returns the p-th percentile (nearest rank) of ds, which it sorts.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ms formats d in milliseconds with a precision fitting its size.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f < 10:
		return fmt.Sprintf("%.2f ms", f)
	case f < 100:
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

func ratio(x float64) string { return fmt.Sprintf("%.2fx", x) }

// rssKB returns VmRSS of pid in KiB.
func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// cpuTime returns utime+stime of pid from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name (in parentheses, which may hold
	// spaces) start with the state, field 3; utime and stime are 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	return time.Duration(u+st) * clockTick, nil
}

// loadAverage returns the 1-minute load average, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// machine describes where the bench runs: CPUs, CPU model, kernel and the
// filesystem holding dir.
func machine(dir string) string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	fs := "unknown filesystem"
	if out, err := exec.Command("df", "-T", dir).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) > 1 {
			fs = f[1] + " on " + f[0]
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s, %s, %s", runtime.NumCPU(), model, kernel, fs, runtime.Version())
}
