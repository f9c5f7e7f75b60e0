package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// next --cron needs no daemon: a home that does not exist is enough.
func TestNextCronEvaluatesAnExpressionWithoutADaemon(t *testing.T) {
	h := newBareHome(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"the skipped 02:30 of Berlin's spring runs at 03:00",
			[]string{"next", "--cron", "30 2 * * *", "--tz", "Europe/Berlin", "--from", "2026-03-28T00:00:00+01:00", "-n", "3"},
			"2026-03-28T02:30:00+01:00\n2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n"},
		{"a weekday backup skips the weekend, flags after the expression",
			[]string{"next", "--cron", "30 2 * * mon-fri", "-n", "2", "--from", "2026-12-05T00:00:00Z", "--tz", "UTC"},
			"2026-12-07T02:30:00Z\n2026-12-08T02:30:00Z\n"},
		{"New York's repeated 01:30 runs once, at its first occurrence",
			[]string{"next", "--cron", "30 1 * * *", "--tz", "America/New_York", "--from", "2026-10-31T12:00:00-04:00", "-n", "2"},
			"2026-11-01T01:30:00-04:00\n2026-11-02T01:30:00-05:00\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.ok(tc.args...); got != tc.want {
				t.Errorf("whenlua %s:\n got %q\nwant %q", strings.Join(tc.args, " "), got, tc.want)
			}
		})
	}
	t.Run("--json gives the expression, the zone and the times", func(t *testing.T) {
		out := h.ok("next", "--cron", "@daily", "--tz", "Australia/Sydney", "--from", "2026-04-04T12:00:00+11:00", "-n", "2", "--json")
		var got nextJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		want := nextJSON{Cron: "@daily", Zone: "Australia/Sydney", Times: []string{"2026-04-05T00:00:00+11:00", "2026-04-06T00:00:00+10:00"}}
		if strings.Join(got.Times, " ") != strings.Join(want.Times, " ") || got.Cron != want.Cron || got.Zone != want.Zone {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("the default zone is the local one", func(t *testing.T) {
		r := h.command(t.Context(), "next", "--cron", "0 12 * * *", "--from", "2026-07-01T00:00:00Z", "-n", "1")
		r.Env = append(r.Env, "TZ=Asia/Tokyo")
		res := runCmd(t, r)
		if res.code != 0 || res.stdout != "2026-07-01T12:00:00+09:00\n" {
			t.Errorf("TZ=Asia/Tokyo: %v", res)
		}
	})
}

func TestNextCronRefusesBadInputOnOneLine(t *testing.T) {
	h := newBareHome(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"next", "--cron", "61 * * * *"}, 1, "above maximum"},
		{[]string{"next", "--cron", "0 2 * *"}, 1, "want 5 fields"},
		{[]string{"next", "--cron", "0 2 * * *", "--tz", "Mars/Base"}, 1, "unknown"},
		{[]string{"next", "--cron", "0 2 * * *", "--from", "yesterday"}, 2, "RFC 3339"},
		{[]string{"next", "--cron", "0 2 * * *", "-n", "0"}, 2, "-n"},
		{[]string{"next", "--cron", "0 2 * * *", "extra"}, 2, "no arguments"},
	} {
		h.fails(tc.code, tc.args, tc.want)
	}
}
