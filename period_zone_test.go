package whenlua

import (
	"strings"
	"testing"
	"time"
)

func TestEveryInAZoneAlignsToLocalMidnight(t *testing.T) {
	cases := []struct {
		name, period, zone, from string
		want                     []string
	}{
		{"a day is a calendar day: 23 hours across spring", "day", "Europe/Berlin", "2026-03-28T12:00:00+01:00",
			[]string{"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00"}},
		{"a day is a calendar day: 25 hours across autumn", "day", "America/New_York", "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"}},
		{"days count from 1970-01-01 in local dates", "2 days", "Australia/Sydney", "2026-10-03T12:00:00+10:00",
			[]string{"2026-10-04T00:00:00+10:00", "2026-10-06T00:00:00+11:00", "2026-10-08T00:00:00+11:00"}},
		{"weeks fall on Thursdays as the epoch did", "week", "Europe/Berlin", "2026-03-25T12:00:00+01:00",
			[]string{"2026-03-26T00:00:00+01:00", "2026-04-02T00:00:00+02:00"}},
		{"months begin at local midnight of the 1st", "month", "America/New_York", "2026-10-15T00:00:00-04:00",
			[]string{"2026-11-01T00:00:00-04:00", "2026-12-01T00:00:00-05:00"}},
		{"years begin at local midnight of January 1st", "year", "Australia/Sydney", "2026-06-01T00:00:00+10:00",
			[]string{"2027-01-01T00:00:00+11:00"}},
		{"a midnight skipped by the clock becomes the end of the gap", "day", "America/Havana", "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"}},
		{"periods shorter than a day keep the epoch alignment", "2 hours", "Asia/Kolkata", "2026-12-06T00:00:00Z",
			[]string{"2026-12-06T07:30:00+05:30", "2026-12-06T09:30:00+05:30"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePeriod(tc.period)
			if err != nil {
				t.Fatal(err)
			}
			loc := mustZone(t, tc.zone)
			at := mustTime(t, tc.from)
			var got []string
			for range tc.want {
				at = p.NextIn(at, loc)
				got = append(got, at.Format(time.RFC3339))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("every %s in %s from %s:\n got %v\nwant %v", tc.period, tc.zone, tc.from, got, tc.want)
			}
		})
	}
}

func TestEveryWithoutAZoneKeepsTheEpochAlignment(t *testing.T) {
	for _, s := range []string{"10 seconds", "hour", "day", "3 weeks", "month", "2 years"} {
		p, err := ParsePeriod(s)
		if err != nil {
			t.Fatal(err)
		}
		from := mustTime(t, "2026-03-29T00:30:00+01:00")
		if got, want := p.NextIn(from, nil), p.Next(from); !got.Equal(want) {
			t.Errorf("%s: NextIn without a zone %v, Next %v", s, got, want)
		}
	}
}
