package whenlua

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Unit is the unit of an every-job's period.
type Unit int

// The period units, smallest first.
const (
	Second Unit = iota + 1
	Minute
	Hour
	Day
	Week
	Month
	Year
)

var unitNames = [...]string{Second: "second", Minute: "minute", Hour: "hour", Day: "day", Week: "week", Month: "month", Year: "year"}

// unitSeconds is the length of the fixed-length units.
var unitSeconds = [...]int64{Second: 1, Minute: 60, Hour: 3600, Day: 86400, Week: 7 * 86400}

func (u Unit) String() string {
	if u >= Second && u <= Year {
		return unitNames[u]
	}
	return fmt.Sprintf("unit(%d)", int(u))
}

// MaxPeriodCount is the largest N accepted in "N units"; it keeps every
// period's length in seconds far inside int64.
const MaxPeriodCount = 1_000_000_000

// Period is the interval of an every-job: N units. Runs fall on multiples of
// the period counted from the Unix epoch in UTC (SPEC §3).
type Period struct {
	N    int
	Unit Unit
}

// ParsePeriod parses "second", "minute", ... "year" (N = 1) and "N seconds",
// "N minutes", ... "N years" with N a positive integer. Case and surrounding
// space do not matter; "1 minute" and "2 minute" are accepted too.
func ParsePeriod(s string) (Period, error) {
	fields := strings.Fields(strings.ToLower(s))
	bad := func(format string, args ...any) (Period, error) {
		return Period{}, fmt.Errorf("%w: period %q: %s (want e.g. \"minute\", \"10 seconds\", \"2 hours\", \"day\", \"3 months\")",
			ErrInvalid, s, fmt.Sprintf(format, args...))
	}
	var count, unit string
	switch len(fields) {
	case 0:
		return bad("empty")
	case 1:
		unit = fields[0]
	case 2:
		count, unit = fields[0], fields[1]
	default:
		return bad("too many words")
	}
	u, plural := parseUnit(unit)
	if u == 0 {
		if _, err := strconv.Atoi(unit); err == nil && count == "" {
			return bad("missing unit after %s", unit)
		}
		return bad("unknown unit %q", unit)
	}
	if count == "" {
		if plural {
			return bad("missing count before %q", unit)
		}
		return Period{N: 1, Unit: u}, nil
	}
	n, err := strconv.ParseInt(count, 10, 64)
	switch {
	case err != nil && strings.Trim(count, "0123456789") == "" && count != "":
		return bad("count %s is too large (at most %d)", count, MaxPeriodCount)
	case err != nil:
		return bad("count %q is not a whole number", count)
	case n <= 0:
		return bad("count must be positive, not %d", n)
	case n > MaxPeriodCount:
		return bad("count %d is too large (at most %d)", n, MaxPeriodCount)
	}
	p := Period{N: int(n), Unit: u}
	if p.longerThanMax() {
		return bad("longer than %d years", MaxPeriodYears)
	}
	return p, nil
}

// MaxPeriodYears bounds a period's length, so that every next run stays
// within the years a timestamp of the CLI's and the daemon's listings can
// hold (up to 9999).
const MaxPeriodYears = 1000

// longerThanMax reports whether p is longer than MaxPeriodYears, counting
// a year as 365.2425 days for the units of fixed length.
func (p Period) longerThanMax() bool {
	n := int64(p.N)
	switch p.Unit {
	case Year:
		return n > MaxPeriodYears
	case Month:
		return n > 12*MaxPeriodYears
	}
	return n*unitSeconds[p.Unit] > MaxPeriodYears*31_556_952
}

func parseUnit(s string) (u Unit, plural bool) {
	for i := Second; i <= Year; i++ {
		switch s {
		case unitNames[i]:
			return i, false
		case unitNames[i] + "s":
			return i, true
		}
	}
	return 0, false
}

// String formats p as ParsePeriod reads it: "minute", "10 seconds".
func (p Period) String() string {
	if p.N == 1 {
		return p.Unit.String()
	}
	return strconv.Itoa(p.N) + " " + p.Unit.String() + "s"
}

// Next returns the first instant strictly after `after` that falls on a
// multiple of p counted from the Unix epoch in UTC: for seconds to weeks the
// Unix time t with t mod (N*unit) = 0 (weeks are aligned to the epoch, a
// Thursday, as in whenjobs); for months the 1st at 00:00 UTC of a month whose
// index since 1970-01 is a multiple of N; for years Jan 1st 00:00 UTC of a
// year whose distance from 1970 is a multiple of N. The result is in UTC.
// p must be valid (N >= 1, a known unit).
func (p Period) Next(after time.Time) time.Time {
	n := int64(p.N)
	if n < 1 {
		n = 1
	}
	after = after.UTC()
	switch p.Unit {
	case Month:
		m := int64(after.Year()-1970)*12 + int64(after.Month()-1)
		k := floorDiv(m, n)*n + n
		return time.Date(1970+int(floorDiv(k, 12)), time.Month(k-floorDiv(k, 12)*12+1), 1, 0, 0, 0, 0, time.UTC)
	case Year:
		y := int64(after.Year() - 1970)
		k := floorDiv(y, n)*n + n
		return time.Date(1970+int(k), time.January, 1, 0, 0, 0, 0, time.UTC)
	}
	secs := int64(1)
	if p.Unit >= Second && p.Unit <= Week {
		secs = unitSeconds[p.Unit]
	}
	size := n * secs
	// Unix() rounds down, so a time past a boundary by a fraction of a
	// second still moves on to the next boundary.
	k := floorDiv(after.Unix(), size)*size + size
	return time.Unix(k, 0).UTC()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
