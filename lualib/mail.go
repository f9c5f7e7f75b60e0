package lualib

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// MailOutputCap is how much of a job's output mailto puts in a message.
const MailOutputCap = 64 << 10

// mailOpts are mailto's options.
type mailOpts struct {
	onlyOnFailure bool
	from          string
}

// mailto(addr [, {only_on_failure=bool, from=addr}]) returns a post function
// that mails the run's result and output to addr through Env.SendMail.
// Given as on_silence, the same function mails the silence alarm (always:
// a silence is a failure).
func (l *lib) mailto(L *lua.LState) int {
	to := L.CheckString(1)
	if err := checkAddr(to); err != nil {
		L.ArgError(1, err.Error())
	}
	var o mailOpts
	if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
		t := L.CheckTable(2)
		err := Fields(t, func(k, v lua.LValue) error {
			var err error
			switch lua.LVAsString(k) {
			case "only_on_failure":
				o.onlyOnFailure, err = AsBool(v, "only_on_failure", "a boolean")
			case "from":
				o.from, err = AsString(v, "from", "a string")
				if err == nil {
					if err = checkAddr(o.from); err != nil {
						err = fmt.Errorf("from: %w", err)
					}
				}
			default:
				err = fmt.Errorf("unknown option %s (want only_on_failure or from)", k.String())
			}
			return err
		})
		if err != nil {
			L.RaiseError("mailto: %v", err)
		}
	}
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if s, ok := SilenceOf(L.Get(1)); ok {
			l.env.SendMail(to, SilenceMessage(to, o.from, s))
			return 0
		}
		r, ok := ResultOf(L.Get(1))
		if !ok {
			L.ArgError(1, "want the result a post function is given, or the silence an on_silence hook is given")
		}
		res := mailResult(r)
		if o.onlyOnFailure && !res.failed() {
			return 0
		}
		l.env.SendMail(to, MailMessage(to, o.from, res))
		return 0
	}))
	return 1
}

func checkAddr(a string) error {
	if strings.TrimSpace(a) == "" {
		return fmt.Errorf("empty mail address")
	}
	if strings.ContainsAny(a, "\r\n\x00") {
		return fmt.Errorf("mail address %q contains a line break", a)
	}
	if len(a) > 900 {
		return fmt.Errorf("mail address of %d bytes is too long", len(a))
	}
	return nil
}

// MailResult is the part of a post function's result table a mail reports.
type MailResult struct {
	Job      string
	Serial   uint64
	Code     int
	Signal   string
	Error    string
	Output   []byte // the output as stored
	Size     int64  // bytes the job wrote in all
	Start    time.Time
	End      time.Time
	Duration time.Duration
}

func (r MailResult) failed() bool { return r.Code != 0 || r.Signal != "" }

func (r MailResult) status() string {
	switch {
	case r.Signal != "" && r.Error != "":
		return r.Error + ", killed by signal " + r.Signal // timed out, cancelled...
	case r.Signal != "":
		return "killed by signal " + r.Signal
	case r.Code == -1 && r.Error != "":
		return "failed: " + r.Error
	}
	return fmt.Sprintf("exited with status %d", r.Code)
}

func mailResult(r Result) MailResult {
	str := func(v lua.LValue) string {
		s, _ := v.(lua.LString)
		return string(s)
	}
	return MailResult{
		Job:      r.JobName,
		Serial:   r.Serial,
		Code:     r.Code,
		Signal:   str(r.Signal),
		Error:    str(r.Error),
		Output:   r.output,
		Size:     r.OutputSize,
		Start:    FromUnixSeconds(r.StartTime),
		End:      FromUnixSeconds(r.EndTime),
		Duration: time.Duration(r.Duration * float64(time.Second)),
	}
}

// MailMessage builds the message mailto sends, ready for `sendmail -t`: a
// Subject naming the job, its serial and exit status, a short summary, and
// the job's output as the daemon stored it, capped at MailOutputCap.
func MailMessage(to, from string, r MailResult) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "To: %s\n", to)
	if from != "" {
		fmt.Fprintf(&b, "From: %s\n", from)
	}
	fmt.Fprintf(&b, "Subject: %s\n", oneLine(fmt.Sprintf("whenlua: job %s #%d %s", r.Job, r.Serial, r.status())))
	b.WriteString("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
	fmt.Fprintf(&b, "Job:      %s\nSerial:   %d\nStatus:   %s\n", r.Job, r.Serial, r.status())
	if !r.Start.IsZero() {
		fmt.Fprintf(&b, "Started:  %s\n", r.Start.UTC().Format(time.RFC3339))
	}
	if !r.End.IsZero() {
		fmt.Fprintf(&b, "Ended:    %s\n", r.End.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "Duration: %s\n\n", r.Duration.Round(time.Millisecond))
	writeOutput(&b, r.Output, r.Size)
	return b.Bytes()
}

func writeOutput(b *bytes.Buffer, out []byte, size int64) {
	if len(out) == 0 {
		b.WriteString("(no output)\n")
		return
	}
	n := min(len(out), MailOutputCap)
	b.Write(out[:n])
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	if left := max(size, int64(len(out))) - int64(n); left > 0 && n < len(out) {
		fmt.Fprintf(b, "[%d more bytes of output left out]\n", left)
	}
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
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
		fmt.Fprintf(&b, "Last success: %s\n", FromUnixSeconds(float64(last)).UTC().Format(time.RFC3339))
	} else {
		b.WriteString("Last success: none known\n")
	}
	fmt.Fprintf(&b, "Watched from: %s\n", FromUnixSeconds(s.Since).UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Silent since: %s\n", FromUnixSeconds(s.SilentSince).UTC().Format(time.RFC3339))
	b.WriteString("\nThe alarm ends at the job's next successful run; `whenlua log " + s.JobName + "` lists its runs.\n")
	return b.Bytes()
}
