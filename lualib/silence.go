package lualib

import (
	"bytes"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Silence is what an on_silence hook gets: the daemon's record of a job
// with the expect option that went without a successful run for longer
// than that. Like Result it reaches Lua as a read-only gopher-luar
// userdata, so mailto can tell the daemon's own record from a table made
// in Lua. Times are Unix seconds, Expect is in seconds.
type Silence struct {
	JobName string `luar:"job_name"`
	// Expect is the job's expect option, in seconds.
	Expect float64 `luar:"expect"`
	// LastSuccess is when the job's last successful run ended; nil when
	// none is known.
	LastSuccess lua.LValue `luar:"last_success"`
	// Since is when the window that ran out began: the last success, or
	// when the daemon began watching the job, whichever is later.
	Since float64 `luar:"since"`
	// SilentSince is when the alarm was raised (Since + Expect, or later
	// when the daemon noticed late).
	SilentSince float64 `luar:"silent_since"`
}

// NewSilence makes the Silence of job with the option expect, whose last
// success ended at last (zero: none known), whose window began at since
// and whose alarm was raised at at.
func NewSilence(job string, expect time.Duration, last, since, at time.Time) Silence {
	s := Silence{JobName: job, Expect: expect.Seconds(), LastSuccess: lua.LNil, Since: unixSeconds(since), SilentSince: unixSeconds(at)}
	if !last.IsZero() {
		s.LastSuccess = lua.LNumber(unixSeconds(last))
	}
	return s
}

// SilenceOf returns the Silence that v holds, and false when v is
// anything else.
func SilenceOf(v lua.LValue) (Silence, bool) {
	ud, ok := v.(*lua.LUserData)
	if !ok {
		return Silence{}, false
	}
	s, ok := ud.Value.(Silence)
	return s, ok
}

// SilenceMessage builds the message mailto sends for a silence, ready for
// `sendmail -t`.
func SilenceMessage(to, from string, s Silence) []byte {
	var b bytes.Buffer
	expect := time.Duration(s.Expect * float64(time.Second))
	fmt.Fprintf(&b, "To: %s\n", to)
	if from != "" {
		fmt.Fprintf(&b, "From: %s\n", from)
	}
	fmt.Fprintf(&b, "Subject: %s\n", oneLine(fmt.Sprintf("whenlua: job %s silent: no successful run for %s", s.JobName, expect)))
	b.WriteString("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
	fmt.Fprintf(&b, "Job:          %s\nExpect:       a successful run every %s\n", s.JobName, expect)
	if last, ok := s.LastSuccess.(lua.LNumber); ok {
		fmt.Fprintf(&b, "Last success: %s\n", fromUnixSeconds(float64(last)).UTC().Format(time.RFC3339))
	} else {
		b.WriteString("Last success: none known\n")
	}
	fmt.Fprintf(&b, "Watched from: %s\n", fromUnixSeconds(s.Since).UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Silent since: %s\n", fromUnixSeconds(s.SilentSince).UTC().Format(time.RFC3339))
	b.WriteString("\nThe alarm ends at the job's next successful run; `whenlua log " + s.JobName + "` lists its runs.\n")
	return b.Bytes()
}
