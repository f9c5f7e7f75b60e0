package whenlua

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := LoadZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// cronTimes lists the next n times of expr in zone after from, as RFC 3339
// with the zone's offset.
func cronTimes(t testing.TB, expr, zone, from string, n int) []string {
	t.Helper()
	c, err := ParseCron(expr, mustZone(t, zone))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	at := mustTime(t, from)
	for range n {
		at = c.Next(at)
		if at.IsZero() {
			t.Fatalf("%q: no next time", expr)
		}
		out = append(out, at.Format(time.RFC3339))
	}
	return out
}

// The 2026 transitions: Europe/Berlin 03-29 02:00->03:00 and 10-25
// 03:00->02:00; America/New_York 03-08 02:00->03:00 and 11-01 02:00->01:00;
// Australia/Sydney 04-05 03:00->02:00 and 10-04 02:00->03:00.
func TestCronAcrossTheDSTChangesOf2026(t *testing.T) {
	cases := []struct {
		name, zone, expr, from string
		want                   []string
	}{
		// Europe/Berlin
		{"Berlin: a daily time in the spring gap runs once when the gap ends", "Europe/Berlin", "30 2 * * *", "2026-03-27T12:00:00+01:00",
			[]string{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"Berlin: a daily time in the autumn repeat runs at its first occurrence only", "Europe/Berlin", "30 2 * * *", "2026-10-24T12:00:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"Berlin: after the first 02:30 of the repeat the second one does not run", "Europe/Berlin", "30 2 * * *", "2026-10-25T02:45:00+02:00",
			[]string{"2026-10-26T02:30:00+01:00"}},
		{"Berlin: an hourly job skips the hour that does not exist", "Europe/Berlin", "0 * * * *", "2026-03-29T00:30:00+01:00",
			[]string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},
		{"Berlin: an hourly job runs in both copies of the repeated hour", "Europe/Berlin", "0 * * * *", "2026-10-25T01:30:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"}},
		{"Berlin: every minute goes from 01:59 to 03:00 in spring", "Europe/Berlin", "* * * * *", "2026-03-29T01:58:00+01:00",
			[]string{"2026-03-29T01:59:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:01:00+02:00"}},
		{"Berlin: every minute runs through the repeated hour again", "Europe/Berlin", "* * * * *", "2026-10-25T02:58:30+02:00",
			[]string{"2026-10-25T02:59:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T02:01:00+01:00"}},
		{"Berlin: a weekly time in the gap runs once that Sunday", "Europe/Berlin", "30 2 * * 0", "2026-03-20T00:00:00+01:00",
			[]string{"2026-03-22T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-04-05T02:30:00+02:00"}},
		{"Berlin: a weekly time in the repeat runs once that Sunday", "Europe/Berlin", "30 2 * * sun", "2026-10-20T00:00:00+02:00",
			[]string{"2026-10-25T02:30:00+02:00", "2026-11-01T02:30:00+01:00"}},
		{"Berlin: a weekly job after a 23-hour day is not a week late", "Europe/Berlin", "0 0 * * 1", "2026-03-23T00:00:00+01:00",
			[]string{"2026-03-30T00:00:00+02:00", "2026-04-06T00:00:00+02:00"}},
		{"Berlin: a weekly job after a 25-hour day is not a week late", "Europe/Berlin", "0 0 * * mon", "2026-10-19T00:00:00+02:00",
			[]string{"2026-10-26T00:00:00+01:00", "2026-11-02T00:00:00+01:00"}},

		// America/New_York
		{"New York: a daily 02:30 runs at 03:00 on the day of the gap", "America/New_York", "30 2 * * *", "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"New York: a daily 01:30 runs at the first of the two", "America/New_York", "30 1 * * *", "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"New York: an hourly job skips 02:00 in spring", "America/New_York", "@hourly", "2026-03-08T00:30:00-05:00",
			[]string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"}},
		{"New York: an hourly job runs in both 01:00 hours", "America/New_York", "@hourly", "2026-11-01T00:30:00-04:00",
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}},
		{"New York: every minute goes from 01:59 to 03:00 in spring", "America/New_York", "* * * * *", "2026-03-08T01:58:00-05:00",
			[]string{"2026-03-08T01:59:00-05:00", "2026-03-08T03:00:00-04:00"}},
		{"New York: every minute goes from 01:59 back to 01:00 in autumn", "America/New_York", "* * * * *", "2026-11-01T01:59:00-04:00",
			[]string{"2026-11-01T01:00:00-05:00", "2026-11-01T01:01:00-05:00"}},
		{"New York: a weekly time in the gap runs once that Sunday", "America/New_York", "30 2 * * 0", "2026-03-01T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-15T02:30:00-04:00"}},
		{"New York: a weekly time in the repeat runs once that Sunday", "America/New_York", "30 1 * * 0", "2026-10-30T12:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-08T01:30:00-05:00"}},
		{"New York: a weekly job after a 23-hour day is not a week late", "America/New_York", "0 0 * * 1", "2026-03-02T00:00:00-05:00",
			[]string{"2026-03-09T00:00:00-04:00", "2026-03-16T00:00:00-04:00"}},

		// Australia/Sydney: the southern hemisphere falls back in April and
		// springs forward in October.
		{"Sydney: a daily 02:30 runs at the first of the two in April", "Australia/Sydney", "30 2 * * *", "2026-04-04T12:00:00+11:00",
			[]string{"2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"}},
		{"Sydney: a daily 02:30 runs at 03:00 on the day of the gap in October", "Australia/Sydney", "30 2 * * *", "2026-10-03T12:00:00+10:00",
			[]string{"2026-10-04T03:00:00+11:00", "2026-10-05T02:30:00+11:00"}},
		{"Sydney: an hourly job runs in both 02:00 hours in April", "Australia/Sydney", "0 * * * *", "2026-04-05T01:30:00+11:00",
			[]string{"2026-04-05T02:00:00+11:00", "2026-04-05T02:00:00+10:00", "2026-04-05T03:00:00+10:00"}},
		{"Sydney: an hourly job skips 02:00 in October", "Australia/Sydney", "0 * * * *", "2026-10-04T00:30:00+10:00",
			[]string{"2026-10-04T01:00:00+10:00", "2026-10-04T03:00:00+11:00"}},
		{"Sydney: every minute runs through the repeated hour in April", "Australia/Sydney", "* * * * *", "2026-04-05T02:58:30+11:00",
			[]string{"2026-04-05T02:59:00+11:00", "2026-04-05T02:00:00+10:00"}},
		{"Sydney: every minute goes from 01:59 to 03:00 in October", "Australia/Sydney", "* * * * *", "2026-10-04T01:58:00+10:00",
			[]string{"2026-10-04T01:59:00+10:00", "2026-10-04T03:00:00+11:00"}},
		{"Sydney: a weekly time in the repeat runs once in April", "Australia/Sydney", "30 2 * * 0", "2026-03-30T00:00:00+11:00",
			[]string{"2026-04-05T02:30:00+11:00", "2026-04-12T02:30:00+10:00"}},
		{"Sydney: a weekly time in the gap runs once in October", "Australia/Sydney", "30 2 * * 0", "2026-09-28T00:00:00+10:00",
			[]string{"2026-10-04T03:00:00+11:00", "2026-10-11T02:30:00+11:00"}},
		{"Sydney: a weekly job after a 23-hour day is not a week late", "Australia/Sydney", "0 0 * * 1", "2026-09-28T00:00:00+10:00",
			[]string{"2026-10-05T00:00:00+11:00", "2026-10-12T00:00:00+11:00"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := cronTimes(t, tc.expr, tc.zone, tc.from, len(tc.want))
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("%s in %s from %s:\n got %v\nwant %v", tc.expr, tc.zone, tc.from, got, tc.want)
			}
		})
	}
}

func TestCronFields(t *testing.T) {
	cases := []struct {
		name, expr, from string
		want             []string
	}{
		{"a weekday backup at 02:30 skips the weekend", "30 2 * * 1-5", "2026-12-04T03:00:00Z",
			[]string{"2026-12-07T02:30:00Z", "2026-12-08T02:30:00Z"}},
		{"lists pick each listed minute", "5,35 9 * * *", "2026-12-06T09:10:00Z",
			[]string{"2026-12-06T09:35:00Z", "2026-12-07T09:05:00Z"}},
		{"steps over a range", "0 8-18/5 * * *", "2026-12-06T00:00:00Z",
			[]string{"2026-12-06T08:00:00Z", "2026-12-06T13:00:00Z", "2026-12-06T18:00:00Z", "2026-12-07T08:00:00Z"}},
		{"names of months and days", "0 12 * JAN,jul Mon", "2026-12-06T00:00:00Z",
			[]string{"2027-01-04T12:00:00Z", "2027-01-11T12:00:00Z"}},
		{"seven is Sunday too", "0 0 * * 7", "2026-12-01T00:00:00Z",
			[]string{"2026-12-06T00:00:00Z"}},
		{"both day fields restricted: either matches (ISC cron)", "0 0 13 * 5", "2026-12-01T00:00:00Z",
			[]string{"2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z", "2026-12-13T00:00:00Z"}},
		{"a day field led by '*' restricts with the other (ISC cron)", "0 0 */10 * 5", "2026-12-01T00:00:00Z",
			[]string{"2026-12-11T00:00:00Z", "2027-01-01T00:00:00Z"}},
		{"a range from late to early wraps around midnight (go-cron)", "0 22-1 * * *", "2026-12-06T12:00:00Z",
			[]string{"2026-12-06T22:00:00Z", "2026-12-06T23:00:00Z", "2026-12-07T00:00:00Z", "2026-12-07T01:00:00Z", "2026-12-07T22:00:00Z"}},
		{"29 February waits for a leap year", "0 0 29 2 *", "2026-12-06T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"@yearly", "@yearly", "2026-12-06T00:00:00Z", []string{"2027-01-01T00:00:00Z"}},
		{"@annually", "@annually", "2026-12-06T00:00:00Z", []string{"2027-01-01T00:00:00Z"}},
		{"@monthly", "@monthly", "2026-12-06T00:00:00Z", []string{"2027-01-01T00:00:00Z"}},
		{"@weekly is Sunday midnight", "@weekly", "2026-12-06T00:00:00Z", []string{"2026-12-13T00:00:00Z"}},
		{"@daily", "@daily", "2026-12-06T00:00:00Z", []string{"2026-12-07T00:00:00Z"}},
		{"@midnight", "@Midnight", "2026-12-06T00:00:00Z", []string{"2026-12-07T00:00:00Z"}},
		{"@hourly", "@hourly", "2026-12-06T00:59:59.5Z", []string{"2026-12-06T01:00:00Z"}},
		{"the next time is strictly after", "0 0 * * *", "2026-12-06T00:00:00Z", []string{"2026-12-07T00:00:00Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from := tc.from
			got := cronTimes(t, tc.expr, "UTC", from, len(tc.want))
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("%s from %s:\n got %v\nwant %v", tc.expr, tc.from, got, tc.want)
			}
		})
	}
}

func TestBadCronExpressionsAreRefused(t *testing.T) {
	wantRefused(t, []badInput{
		{"too few fields", "30 2 * *", "want 5 fields"},
		{"seconds are not a field", "0 30 2 * * *", "want 5 fields"},
		{"a zone inside the expression", "CRON_TZ=UTC 0 2 * * *", "tz option"},
		{"a minute out of range", "60 * * * *", "above maximum"},
		{"an unknown name", "0 0 * * fun", "fun"},
		{"an unknown shorthand", "@reboot", "unknown shorthand"},
		{"@every is not cron", "@every 5m", "unknown shorthand"},
		{"a question mark", "0 0 ? * *", "'?'"},
		{"a hash", "H 0 * * *", "H"},
		{"last day of month is not cron", "0 0 L * *", "L"},
		{"a day that never comes", "0 0 31 2 *", "no day matches"},
		{"empty", "", "want 5 fields"},
	}, func(t *testing.T, expr string) error {
		_, err := ParseCron(expr, time.UTC)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
		return err
	})
}

// badInput is an input a parser must refuse, and what its error mentions.
type badInput struct{ name, in, want string }

// wantRefused runs parse on each input, in a subtest of its own: it must
// fail with an error wrapping ErrInvalid that mentions what it says.
func wantRefused(t *testing.T, cases []badInput, parse func(t *testing.T, in string) error) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := parse(t, tc.in)
			if err == nil {
				t.Fatalf("%q was accepted", tc.in)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: error %q, want ErrInvalid mentioning %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestLoadZone(t *testing.T) {
	if loc, err := LoadZone(""); err != nil || loc != time.Local {
		t.Errorf("empty zone: %v, %v; want the local zone", loc, err)
	}
	if loc, err := LoadZone("Europe/Berlin"); err != nil || loc.String() != "Europe/Berlin" {
		t.Errorf("Europe/Berlin: %v, %v", loc, err)
	}
	for _, bad := range []string{"Mars/Olympus", "Europe/Berlin ", "../etc/passwd"} {
		if _, err := LoadZone(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err %v, want ErrInvalid", bad, err)
		}
	}
}

func TestCronNextIsInTheExpressionsZone(t *testing.T) {
	c, err := ParseCron("30 2 * * 1-5", mustZone(t, "Asia/Kolkata"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Next(mustTime(t, "2026-12-07T00:00:00Z"))
	if s := got.Format(time.RFC3339); s != "2026-12-08T02:30:00+05:30" {
		t.Errorf("got %s", s)
	}
}

func BenchmarkCronNext(b *testing.B) {
	for _, expr := range []string{"* * * * *", "30 2 * * 1-5", "0 0 29 2 *"} {
		b.Run(expr, func(b *testing.B) {
			c, err := ParseCron(expr, mustZone(b, "Europe/Berlin"))
			if err != nil {
				b.Fatal(err)
			}
			at := mustTime(b, "2026-12-06T10:00:00Z")
			for b.Loop() {
				c.Next(at)
			}
		})
	}
}
