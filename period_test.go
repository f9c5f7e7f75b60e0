package whenlua

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParsePeriod(t *testing.T) {
	good := []struct {
		name, in string
		want     Period
	}{
		{"a bare unit means one of it", "second", Period{1, Second}},
		{"a count with a plural unit", "10 seconds", Period{10, Second}},
		{"minute is one minute", "minute", Period{1, Minute}},
		{"minutes take a count", "5 minutes", Period{5, Minute}},
		{"hours take a count", "2 hours", Period{2, Hour}},
		{"day is one day", "day", Period{1, Day}},
		{"weeks take a count", "2 weeks", Period{2, Week}},
		{"months take a count", "3 months", Period{3, Month}},
		{"year is one year", "year", Period{1, Year}},
		{"one with a singular unit", "1 hour", Period{1, Hour}},
		{"case and spaces do not matter", "  10   Minutes ", Period{10, Minute}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePeriod(tc.in)
			if err != nil {
				t.Fatalf("ParsePeriod(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParsePeriod(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
	wantRefused(t, []badInput{
		{"zero is not a period", "0 minutes", "must be positive"},
		{"a fruit is not a unit", "banana", `unknown unit "banana"`},
		{"negative counts are refused", "-1 hours", "must be positive"},
		{"a number alone lacks a unit", "5", "missing unit"},
		{"a plural unit alone lacks a count", "minutes", "missing count"},
		{"fractions are not whole numbers", "1.5 hours", "not a whole number"},
		{"huge counts are refused", "99999999999999999999 seconds", "too large"},
		{"counts past the maximum are refused", "2000000000 days", "too large"},
		{"empty text is refused", "  ", "empty"},
		{"extra words are refused", "every 5 minutes", "too many words"},
	}, func(t *testing.T, in string) error {
		_, err := ParsePeriod(in)
		return err
	})
}

func TestPeriodString(t *testing.T) {
	for _, s := range []string{"second", "10 seconds", "minute", "2 hours", "day", "3 weeks", "month", "12 months", "year", "5 years"} {
		t.Run(s+" prints as it parses", func(t *testing.T) {
			p, err := ParsePeriod(s)
			if err != nil {
				t.Fatal(err)
			}
			if p.String() != s {
				t.Fatalf("String() = %q, want %q", p.String(), s)
			}
		})
	}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestPeriodNext(t *testing.T) {
	cases := []struct {
		name   string
		period Period
		after  string
		want   string
	}{
		{"ten seconds move to the next multiple of ten", Period{10, Second}, "2024-05-01T12:00:03Z", "2024-05-01T12:00:10Z"},
		{"a time on a boundary moves to the next one", Period{10, Second}, "2024-05-01T12:00:10Z", "2024-05-01T12:00:20Z"},
		{"a fraction past a boundary moves to the next one", Period{10, Second}, "2024-05-01T12:00:10.000000001Z", "2024-05-01T12:00:20Z"},
		{"a fraction before a boundary stops at it", Period{10, Second}, "2024-05-01T12:00:09.999Z", "2024-05-01T12:00:10Z"},
		{"every second is the next whole second", Period{1, Second}, "2024-05-01T12:00:09.5Z", "2024-05-01T12:00:10Z"},
		{"minute goes to the next whole minute", Period{1, Minute}, "2024-05-01T12:34:56Z", "2024-05-01T12:35:00Z"},
		{"seven minutes count from the epoch", Period{7, Minute}, "1970-01-01T00:00:00Z", "1970-01-01T00:07:00Z"},
		{"hours cross midnight", Period{1, Hour}, "2024-05-01T23:59:59Z", "2024-05-02T00:00:00Z"},
		{"day is midnight UTC", Period{1, Day}, "2024-05-01T12:00:00Z", "2024-05-02T00:00:00Z"},
		{"day is midnight UTC whatever the zone", Period{1, Day}, "2024-05-01T23:30:00-02:00", "2024-05-03T00:00:00Z"},
		{"day crosses the year", Period{1, Day}, "2024-12-31T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"weeks are aligned to the epoch, a Thursday", Period{1, Week}, "2024-05-01T12:00:00Z", "2024-05-02T00:00:00Z"},
		{"a week on its Thursday moves a week on", Period{1, Week}, "2024-05-02T00:00:00Z", "2024-05-09T00:00:00Z"},
		{"month is the first of the next month", Period{1, Month}, "2024-05-15T08:00:00Z", "2024-06-01T00:00:00Z"},
		{"month goes from December to January", Period{1, Month}, "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z"},
		{"month on the first moves a month on", Period{1, Month}, "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"three months count from 1970-01", Period{3, Month}, "2024-05-15T00:00:00Z", "2024-07-01T00:00:00Z"},
		{"five months cross the year", Period{5, Month}, "2024-11-15T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"five months count from 1970-01, not from January", Period{5, Month}, "2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z"},
		{"year is the next January 1st", Period{1, Year}, "2024-05-15T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"a year on its January 1st moves a year on", Period{1, Year}, "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"four years count from 1970", Period{4, Year}, "2024-05-15T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"times before the epoch round the right way", Period{10, Second}, "1969-12-31T23:59:55Z", "1970-01-01T00:00:00Z"},
		{"months before the epoch round the right way", Period{2, Month}, "1969-12-15T00:00:00Z", "1970-01-01T00:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.period.Next(utc(tc.after))
			if want := utc(tc.want); !got.Equal(want) {
				t.Fatalf("%v.Next(%s) = %s, want %s", tc.period, tc.after, got.Format(time.RFC3339Nano), want.Format(time.RFC3339))
			}
			if got.Location() != time.UTC {
				t.Fatalf("Next returned a time in %v, want UTC", got.Location())
			}
		})
	}
}

func TestPeriodNextIsAlwaysLaterAndAligned(t *testing.T) {
	start := utc("2023-12-30T22:17:43.25Z")
	for _, p := range []Period{{1, Second}, {10, Second}, {15, Minute}, {6, Hour}, {1, Day}, {2, Week}, {1, Month}, {7, Month}, {1, Year}} {
		t.Run(p.String()+" steps forward on its own grid", func(t *testing.T) {
			at := start
			for i := 0; i < 50; i++ {
				next := p.Next(at)
				if !next.After(at) {
					t.Fatalf("Next(%v) = %v is not later", at, next)
				}
				if next.Nanosecond() != 0 {
					t.Fatalf("Next(%v) = %v is not a whole second", at, next)
				}
				if p.Next(next.Add(-time.Nanosecond)) != next {
					t.Fatalf("Next just before %v skips it", next)
				}
				at = next
			}
		})
	}
}

func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"second", "10 seconds", "minute", "0 minutes", "banana", "-1 hours", "5", "3 months", "year", "1e3 days"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParsePeriod(%q) error %v is not ErrInvalid", s, err)
			}
			return
		}
		if p.N < 1 || p.N > MaxPeriodCount || p.Unit < Second || p.Unit > Year {
			t.Fatalf("ParsePeriod(%q) = %+v out of range", s, p)
		}
		q, err := ParsePeriod(p.String())
		if err != nil || q != p {
			t.Fatalf("ParsePeriod(%q).String() = %q parses to %+v, %v", s, p.String(), q, err)
		}
		at := time.Unix(1_700_000_000, 0)
		if next := p.Next(at); !next.After(at) {
			t.Fatalf("%v.Next(%v) = %v is not later", p, at, next)
		}
	})
}

func TestAPeriodIsAtMostAThousandYears(t *testing.T) {
	for _, s := range []string{"1000 years", "12000 months", "52000 weeks", "365000 days", "1000000000 seconds", "500000000 minutes"} {
		if _, err := ParsePeriod(s); err != nil {
			t.Errorf("ParsePeriod(%q): %v", s, err)
		}
	}
	for _, s := range []string{"1001 years", "12001 months", "53000 weeks", "366000 days", "8800000 hours", "1000000000 minutes", "1000000000 years"} {
		if _, err := ParsePeriod(s); err == nil || !strings.Contains(err.Error(), "longer than 1000 years") {
			t.Errorf("ParsePeriod(%q) = %v, want longer than 1000 years", s, err)
		}
	}
}
