package whenlua

import (
	"fmt"
	"strings"
	"time"

	gocron "github.com/netresearch/go-cron"
)

// Cron is a 5-field cron expression (minute hour day-of-month month
// day-of-week) read in a time zone. The fields are parsed by go-cron; the
// next-time computation is ours, so that daylight saving time behaves as
// ISC cron and cronie promise (SPEC §8):
//   - a job whose minute and hour fields are both fixed ("30 2 * * *") runs
//     once at each matching wall time; a time skipped by a spring-forward
//     runs once, right when the gap ends; a time repeated by a fall-back runs
//     at its first occurrence only;
//   - a job whose minute or hour field starts with '*' ("0 * * * *",
//     "*/5 * * * *") follows the clock: it runs at every instant whose wall
//     time matches, so twice in a repeated hour and not at all in a skipped one.
//
// Days are calendar days of the zone, so a weekly job is never pushed by a
// 23- or 25-hour day. A Cron is immutable and safe to share.
type Cron struct {
	expr string
	loc  *time.Location
	// Bit i of each set is value i allowed, as go-cron's SpecSchedule keeps
	// them (day-of-week 7 already folded onto 0).
	minute, hour, dom, month, dow uint64
	// domStar and dowStar: the field starts with '*'. As in ISC cron, a day
	// matches both restricted fields' union, else their intersection.
	domStar, dowStar bool
	// wildcard: the minute or hour field starts with '*' (ISC cron's
	// "wildcard job", which follows the clock across DST).
	wildcard bool
}

// cronDescriptors are the @-shorthands ISC cron accepts, as their fields.
var cronDescriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// cronParser reads exactly the five standard fields, with names of months
// and days, lists, ranges and steps, and ISC cron's union of the two day
// fields.
var cronParser = gocron.NewParser(gocron.Minute | gocron.Hour | gocron.Dom | gocron.Month | gocron.Dow | gocron.DowOrDom)

// cronSearchYears bounds Next's search: the Gregorian calendar repeats its
// days of the week every 400 years, but any satisfiable five-field
// expression matches within 28 years of any date (Feb 29 on a given
// weekday is the sparsest).
const cronSearchYears = 29

// ParseCron parses a 5-field cron expression or one of @yearly,
// @annually, @monthly, @weekly, @daily, @midnight, @hourly, read in loc
// (nil: UTC). An expression that can never match (day 31 of February) is
// an error too; errors wrap ErrInvalid.
func ParseCron(expr string, loc *time.Location) (*Cron, error) {
	if loc == nil {
		loc = time.UTC
	}
	bad := func(format string, args ...any) (*Cron, error) {
		return nil, fmt.Errorf("%w: cron expression %q: %s", ErrInvalid, expr, fmt.Sprintf(format, args...))
	}
	spec := strings.TrimSpace(expr)
	if strings.HasPrefix(spec, "@") {
		fields, ok := cronDescriptors[strings.ToLower(spec)]
		if !ok {
			return bad("unknown shorthand (want @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)")
		}
		spec = fields
	}
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		if len(fields) > 0 && strings.Contains(fields[0], "=") {
			return bad("a time zone is given with the tz option, not in the expression")
		}
		return bad("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(fields))
	}
	for _, f := range fields {
		// go-cron reads '?' as '*'; cron has no such field.
		if strings.Contains(f, "?") {
			return bad("field %q: '?' is not a cron field (use '*')", f)
		}
	}
	s, err := cronParser.Parse(strings.Join(fields, " "))
	if err != nil {
		return bad("%v", err)
	}
	ss, ok := s.(*gocron.SpecSchedule)
	if !ok || len(ss.DomConstraints) > 0 || len(ss.DowConstraints) > 0 {
		return bad("not a 5-field expression")
	}
	c := &Cron{
		expr:     strings.TrimSpace(expr),
		loc:      loc,
		minute:   ss.Minute,
		hour:     ss.Hour,
		dom:      ss.Dom,
		month:    ss.Month,
		dow:      ss.Dow,
		domStar:  strings.HasPrefix(fields[2], "*"),
		dowStar:  strings.HasPrefix(fields[4], "*"),
		wildcard: strings.HasPrefix(fields[0], "*") || strings.HasPrefix(fields[1], "*"),
	}
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return bad("no day matches it")
	}
	return c, nil
}

// String returns the expression as written.
func (c *Cron) String() string { return c.expr }

// Location returns the zone the expression is read in.
func (c *Cron) Location() *time.Location { return c.loc }

// Next returns the first instant strictly after `after` at which the job
// is due, in c's zone, or the zero time when there is none within
// cronSearchYears.
func (c *Cron) Next(after time.Time) time.Time {
	local := after.In(c.loc)
	// Wall times up to skip have no instant after `after`; minOffsetAround
	// makes that hold across a change of offset too.
	skip := after.Unix() + int64(minOffsetAround(c.loc, after))
	y, m, d := local.Date()
	var (
		best  time.Time
		found bool
		buf   [2]time.Time
	)
	days := cronSearchYears * 366
	for i := -1; i < days; i++ {
		date := time.Date(y, m, d+i, 0, 0, 0, 0, time.UTC)
		if c.month&(1<<uint(date.Month())) == 0 {
			// Move to the month's last day; the loop steps into the next.
			i += time.Date(date.Year(), date.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day() - date.Day()
			continue
		}
		dayNaive := date.Unix()
		if dayNaive+86400 <= skip || !c.dayMatches(date) {
			continue
		}
		for h := int64(0); h < 24; h++ {
			if c.hour&(1<<uint(h)) == 0 || dayNaive+h*3600+59*60 <= skip {
				continue
			}
			for mi := int64(0); mi < 60; mi++ {
				naive := dayNaive + h*3600 + mi*60
				if c.minute&(1<<uint(mi)) == 0 || naive <= skip {
					continue
				}
				ts := wallInstants(c.loc, naive, buf[:0])
				switch {
				case len(ts) == 0 && c.wildcard:
					continue
				case len(ts) == 0:
					ts = append(ts, gapEnd(c.loc, naive))
				case !c.wildcard:
					ts = ts[:1]
				}
				// Earliest instants grow with the wall time: once this one
				// is no earlier than the best so far, nothing later beats it.
				if found && !ts[0].Before(best) {
					return best
				}
				for _, t := range ts {
					if t.After(after) && (!found || t.Before(best)) {
						best, found = t, true
					}
				}
			}
		}
	}
	if found {
		return best
	}
	return time.Time{}
}

// dayMatches reports whether the calendar date (at UTC midnight) is a day
// of the expression: its month matches, and its day of month and day of
// week both match when either field starts with '*', else either does.
func (c *Cron) dayMatches(date time.Time) bool {
	if c.month&(1<<uint(date.Month())) == 0 {
		return false
	}
	dom := c.dom&(1<<uint(date.Day())) != 0
	dow := c.dow&(1<<uint(date.Weekday())) != 0
	if c.domStar || c.dowStar {
		return dom && dow
	}
	return dom || dow
}
