package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/whenlua/whenlua"
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

// A cron job in a named zone, through the real daemon: names and status
// show its zone, and next lists its times as the zone's wall clock has
// them, the first being the one the daemon scheduled.
func TestNextListsTheTimesOfTheDaemonsJobsInTheirZones(t *testing.T) {
	t.Setenv("TZ", "Asia/Tokyo") // the daemon's local zone
	h := newHome(t)
	h.writeJob("backup.lua", `cron("30 2 * * 1-5", "true", { name = "backup", tz = "Europe/Berlin" })
cron("@daily", "true", { name = "local" })
every("10 minutes", "true", { name = "tick" })
when("x == 1", "true", { name = "w" })
`)
	h.start()
	waitFor(t, "the jobs to load", func() bool { return strings.Contains(h.ok("names"), "backup\t") })

	names := h.ok("names")
	for _, want := range []string{
		"backup\tcron\t30 2 * * 1-5\t", "\tEurope/Berlin\n",
		"local\tcron\t@daily\t", "\tAsia/Tokyo\n",
		"tick\tevery\t10 minutes\t", "\tUTC\n",
		"w\twhen\tx == 1\t", ":4\t-\n",
	} {
		if !strings.Contains(names, want) {
			t.Errorf("names does not show %q:\n%s", want, names)
		}
	}
	st := h.ok("status")
	if !strings.Contains(st, "backup\tcron 30 2 * * 1-5\tEurope/Berlin") {
		t.Errorf("status does not show the cron job's zone:\n%s", st)
	}
	// Its next time reads in that zone, with the offset, as next writes it.
	if !regexp.MustCompile(`T02:30:00\+0[12]:00\tbackup\t`).MatchString(st) {
		t.Errorf("status does not give the cron job's next run as 02:30 in its zone:\n%s", st)
	}

	t.Run("from a given time the DST change shows", func(t *testing.T) {
		got := h.ok("next", "backup", "-n", "3", "--from", "2026-10-22T12:00:00+02:00")
		want := "2026-10-23T02:30:00+02:00\tbackup\tcron 30 2 * * 1-5\tEurope/Berlin\n" +
			"2026-10-26T02:30:00+01:00\tbackup\tcron 30 2 * * 1-5\tEurope/Berlin\n" +
			"2026-10-27T02:30:00+01:00\tbackup\tcron 30 2 * * 1-5\tEurope/Berlin\n"
		if got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("from now the times are the zone's weekday 02:30s, the first as the daemon has it", func(t *testing.T) {
		var res nextResult
		if err := json.Unmarshal([]byte(h.ok("next", "backup", "-n", "4", "--json")), &res); err != nil {
			t.Fatal(err)
		}
		got := res.Jobs
		if len(got) != 1 || len(got[0].Times) != 4 || got[0].Zone != "Europe/Berlin" {
			t.Fatalf("next --json: %+v", got)
		}
		berlin, _ := time.LoadLocation("Europe/Berlin")
		var prev time.Time
		for _, s := range got[0].Times {
			at, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatal(err)
			}
			local := at.In(berlin)
			_, off := local.Zone()
			if _, want := at.Zone(); off != want || local.Weekday() == time.Saturday || local.Weekday() == time.Sunday ||
				local.Format("15:04") != "02:30" && local.Format("15:04") != "03:00" || !at.After(prev) || !at.After(time.Now()) {
				t.Errorf("%s is not a coming Berlin weekday 02:30 with Berlin's offset", s)
			}
			prev = at
		}
		var ji []whenlua.JobInfo
		if err := json.Unmarshal([]byte(h.ok("names", "--json")), &ji); err != nil {
			t.Fatal(err)
		}
		for _, j := range ji {
			if j.Name == "backup" && j.Next.Format(time.RFC3339) != got[0].Times[0] {
				t.Errorf("first time %s, the daemon has %s", got[0].Times[0], j.Next.Format(time.RFC3339))
			}
		}
	})
	t.Run("all jobs in time order, the when-job left out", func(t *testing.T) {
		out := h.ok("next", "-n", "2")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 6 || strings.Contains(out, "\tw\t") {
			t.Fatalf("next:\n%s", out)
		}
		var prev time.Time
		for _, l := range lines {
			at, err := time.Parse(time.RFC3339, strings.Split(l, "\t")[0])
			if err != nil || at.Before(prev) {
				t.Fatalf("line %q is not in time order", l)
			}
			prev = at
		}
	})
	t.Run("a when-job or an unknown job has no times", func(t *testing.T) {
		h.fails(1, []string{"next", "w"}, "when-job with nothing pending")
		h.fails(1, []string{"next", "nosuch"}, "no job named")
		h.fails(2, []string{"next", "backup", "--tz", "UTC"}, "--tz goes with --cron")
	})
}

func TestLogSaysWhatACatchUpRunStandsForAndWhichAttemptARetryIs(t *testing.T) {
	start := time.Date(2026, 12, 4, 1, 40, 0, 0, time.UTC)
	r := whenlua.Run{Serial: 7, Job: "backup", State: whenlua.RunDone, Start: start, End: start.Add(2 * time.Second),
		Scheduled: time.Date(2026, 12, 4, 2, 30, 0, 0, time.FixedZone("CET", 3600)), CatchUp: true}
	if got := logLine(r); !strings.HasPrefix(got, "7\tbackup\t") || !strings.HasSuffix(got, "\t0\tcatch-up for 2026-12-04T02:30:00+01:00") {
		t.Errorf("catch-up run: %q", got)
	}
	r.CatchUp = false
	if got := logLine(r); !strings.HasSuffix(got, "\t0") {
		t.Errorf("on-time run: %q", got)
	}
	r.Attempt, r.FirstSerial, r.Code = 3, 5, 2
	if got := logLine(r); !strings.HasSuffix(got, "\t2\tattempt 3 of the run 5") {
		t.Errorf("a retry: %q", got)
	}
	r.Attempt, r.State, r.Node, r.Error = 0, whenlua.RunLost, "n3", "node n3 stopped answering\x1b[2J while it ran"
	if got := logLine(r); !strings.HasSuffix(got, "\tlost\ton n3\tnode n3 stopped answering [2J while it ran") {
		t.Errorf("a lost run of a cluster: %q", got)
	}
}

// A when-job with hold, through the real daemon: pending while the hold
// runs, then one run.
func TestAHoldJobFiresOnceAfterTheHold(t *testing.T) {
	h := newHome(t)
	// busy's short hold runs out during the test; patient's long one shows
	// the pending state however slowly the commands below are answered.
	h.writeJob("load.lua", `when("load > 4", "true", { name = "busy", hold = "1s" })
when("load > 4", "true", { name = "patient", hold = "1h" })`)
	h.start()
	waitFor(t, "the jobs to load", func() bool { return strings.Contains(h.ok("names"), "patient\t") })
	h.ok("set", "--type", "int", "load=5")
	if out := h.ok("next", "patient"); !strings.Contains(out, "\tpatient\thold, true since ") || strings.Count(out, "\n") != 1 {
		t.Errorf("next patient during the hold: %q", out)
	}
	var st whenlua.Status
	if err := json.Unmarshal([]byte(h.ok("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	var pending *whenlua.Pending
	for i := range st.Pending {
		if st.Pending[i].Job == "patient" {
			pending = &st.Pending[i]
		}
	}
	if pending == nil || pending.Due.Sub(pending.Since) != time.Hour {
		t.Fatalf("status pending = %+v, want patient due an hour after it became true", st.Pending)
	}
	if txt := h.ok("status"); !strings.Contains(txt, "pending (hold):") || !strings.Contains(txt, "\tpatient\ttrue since ") {
		t.Errorf("status does not show the pending hold:\n%s", txt)
	}
	waitFor(t, "the run after the hold", func() bool { return strings.Contains(h.ok("log", "busy"), "\tbusy\t") })
	h.ok("set", "--type", "int", "load=6") // still true: nothing more
	if out := h.ok("log", "busy"); strings.Count(out, "\n") != 1 {
		t.Errorf("log after the hold:\n%s", out)
	}
	var after whenlua.Status
	if err := json.Unmarshal([]byte(h.ok("status", "--json")), &after); err != nil || len(after.Pending) != 1 || after.Pending[0].Job != "patient" {
		t.Errorf("pending after busy's run: %+v %v, want only patient", after.Pending, err)
	}
}
