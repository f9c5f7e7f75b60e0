package luaapi

import (
	"strings"
	"testing"
	"time"
)

func TestCronAndZonedEveryDeclareTheirTimes(t *testing.T) {
	f := mustLoad(t, `
cron("30 2 * * 1-5", "backup", { name = "backup", tz = "Europe/Berlin" })
cron("@hourly", "true", { name = "local", catch_up = true, jitter = "5m" })
every("day", "true", { name = "berlin-day", tz = "Europe/Berlin" })
every("day", "true", { name = "utc-day" })
`, newFakeHost(nil))
	from, _ := time.Parse(time.RFC3339, "2026-03-27T12:00:00+01:00")
	cases := []struct {
		name, kind, schedule, zone, next string
	}{
		{"backup", "cron", "cron 30 2 * * 1-5", "Europe/Berlin", "2026-03-30T02:30:00+02:00"},
		{"local", "cron", "cron @hourly", "", ""},
		{"berlin-day", "every", "every day", "Europe/Berlin", "2026-03-28T00:00:00+01:00"},
		{"utc-day", "every", "every day", "UTC", "2026-03-28T00:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is a "+tc.kind+" job", func(t *testing.T) {
			j := job(t, f, tc.name)
			if j.Kind.String() != tc.kind || j.Schedule() != tc.schedule {
				t.Errorf("kind %s, schedule %q", j.Kind, j.Schedule())
			}
			if tc.zone != "" && j.ZoneName() != tc.zone {
				t.Errorf("zone %q, want %q", j.ZoneName(), tc.zone)
			}
			if tc.next == "" {
				return
			}
			if got := j.Next(from).Format(time.RFC3339); got != tc.next {
				t.Errorf("next after %s: %s, want %s", from.Format(time.RFC3339), got, tc.next)
			}
		})
	}
	t.Run("a cron job without tz is read in the local zone", func(t *testing.T) {
		if j := job(t, f, "local"); j.Zone != time.Local || !j.CatchUp || job(t, f, "backup").CatchUp || j.Jitter != 5*time.Minute {
			t.Errorf("zone %v, want Local; catch_up only where set", j.Zone)
		}
	})
	t.Run("a when job has no times", func(t *testing.T) {
		g := mustLoad(t, `when("x", "true", {name = "w"})`, newFakeHost(nil))
		if j := job(t, g, "w"); !j.Next(from).IsZero() || j.Schedule() != "" || j.ZoneName() != "" {
			t.Errorf("when job: next %v, schedule %q, zone %q", j.Next(from), j.Schedule(), j.ZoneName())
		}
	})
}

func TestBadCronDeclarationsAreLoadErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"an expression that is not a string", `cron(5, "true")`, "cron: the expression must be a string"},
		{"a tz that is not a string", `cron("@daily", "true", {tz = 1})`, "option tz must be a zone name"},
		{"an empty tz", `every("day", "true", {tz = ""})`, "option tz is empty"},
		{"an unknown zone for every", `every("day", "true", {tz = "Nowhere/Else"})`, `time zone "Nowhere/Else": unknown`},
		{"too many arguments", `cron("@daily", "true", {}, 4)`, "cron(expression, script [, options])"},
		{"catch_up on a when-job", `when("x", "true", {catch_up = true})`, "option catch_up is for every and cron jobs"},
		{"catch_up that is not a boolean", `every("day", "true", {catch_up = "yes"})`, "option catch_up must be true or false, not a string"},
		{"jitter on a when-job", `when("x", "true", {jitter = "5m"})`, "option jitter is for every and cron jobs"},
		{"a jitter that is not a duration", `cron("@daily", "true", {jitter = "soon"})`, `option jitter "soon" is not a duration`},
		{"a negative jitter", `every("hour", "true", {jitter = -5})`, "option jitter must be positive"},
		{"retry that is not a table", `when("x", "true", {retry = 3})`, "option retry must be a table"},
		{"retry without attempts", `when("x", "true", {retry = {delay = "1m"}})`, "attempts is missing"},
		{"retry with one attempt", `when("x", "true", {retry = {attempts = 1}})`, "attempts must be a whole number from 2 to 100"},
		{"retry with a fraction of an attempt", `every("hour", "true", {retry = {attempts = 2.5}})`, "attempts must be a whole number"},
		{"retry with a backoff below 1", `cron("@daily", "true", {retry = {attempts = 2, backoff = 0.5}})`, "backoff must be a number of at least 1"},
		{"retry with a bad delay", `when("x", "true", {retry = {attempts = 2, delay = "later"}})`, `option retry.delay "later" is not a duration`},
		{"retry with an unknown key", `when("x", "true", {retry = {attempts = 2, tries = 3}})`, "unknown key tries"},
		{"hold on an every-job", `every("hour", "true", {hold = "5m"})`, "option hold is for when jobs"},
		{"rerun_lost that is not a boolean", `when("x", "true", {rerun_lost = "yes"})`, "option rerun_lost must be true or false, not a string"},
		{"on that is not a string", `when("x", "true", {on = 3})`, `option on must be "any", "leader" or a node's name, not a number`},
		{"on naming no node", `every("hour", "true", {on = "web 1"})`, `option on: want "any", "leader" or a node's name (letters, digits, '-', '_', '.'), not "web 1"`},
		{"a hold that is not a duration", `when("x", "true", {hold = "a while"})`, `option hold "a while" is not a duration`},
		{"a six-field expression", "\n\ncron(\"0 30 2 * * *\", \"true\")", "test.lua:3: cron expression \"0 30 2 * * *\": want 5 fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSrc(t, tc.src, Options{Host: newFakeHost(nil)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTheOnOptionNamesWhereAJobRuns(t *testing.T) {
	f := mustLoad(t, `when("x", "true", {name = "d"})
when("x", "true", {name = "a", on = "any"})
every("hour", "true", {name = "l", on = "leader"})
cron("@daily", "true", {name = "n", on = "web-1.eu"})`, newFakeHost(nil))
	for name, want := range map[string]string{"d": "any", "a": "any", "l": "leader", "n": "web-1.eu"} {
		if got := job(t, f, name).On; got != want {
			t.Errorf("job %s: on %q, want %q", name, got, want)
		}
	}
}

func TestRetryDelaysGrowByTheBackoff(t *testing.T) {
	f := mustLoad(t, `when("x", "true", {name = "r", retry = {attempts = 4, delay = "10s", backoff = 3}})
when("x", "true", {name = "d", retry = {attempts = 2}})`, newFakeHost(nil))
	r := job(t, f, "r").Retry
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 30 * time.Second, 3: 90 * time.Second} {
		if d, ok := r.After(n); !ok || d != want {
			t.Errorf("after attempt %d: %v %v, want %v", n, d, ok, want)
		}
	}
	if _, ok := r.After(4); ok {
		t.Error("a fifth attempt after the fourth")
	}
	if d := job(t, f, "d").Retry; d.Delay != 30*time.Second || d.Backoff != 1 {
		t.Errorf("defaults: %+v, want a delay of 30s and a backoff of 1", d)
	}
}
