package lualib

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"syscall"
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
// that mails the run's result and output to addr through Env.SendMail. It
// takes only the run record the daemon passes to post, and reads the output
// file the daemon knows for that run (Env.RunOutput), never a path from Lua.
func (l *lib) mailto(L *lua.LState) int {
	to := L.CheckString(1)
	if err := checkAddr(to); err != nil {
		L.ArgError(1, err.Error())
	}
	var o mailOpts
	if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
		t := L.CheckTable(2)
		var bad string
		t.ForEach(func(k, v lua.LValue) {
			if bad != "" {
				return
			}
			switch lua.LVAsString(k) {
			case "only_on_failure":
				b, ok := v.(lua.LBool)
				if !ok {
					bad = fmt.Sprintf("only_on_failure must be a boolean, not a %s", v.Type())
				}
				o.onlyOnFailure = bool(b)
			case "from":
				s, ok := v.(lua.LString)
				if !ok {
					bad = fmt.Sprintf("from must be a string, not a %s", v.Type())
				} else if err := checkAddr(string(s)); err != nil {
					bad = "from: " + err.Error()
				}
				o.from = string(s)
			default:
				bad = fmt.Sprintf("unknown option %s (want only_on_failure or from)", k.String())
			}
		})
		if bad != "" {
			L.RaiseError("mailto: %s", bad)
		}
	}
	L.Push(L.NewFunction(func(L *lua.LState) int {
		r := L.CheckTable(1)
		out, ok := l.env.RunOutput(r)
		if !ok {
			L.RaiseError("mailto: want the run record the daemon passes to post, not a table made in Lua")
		}
		res := resultFromTable(r)
		res.Output = out
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
	Output   string // path of output.txt, as the daemon knows it
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

func resultFromTable(t *lua.LTable) MailResult {
	num := func(k string) float64 {
		n, _ := t.RawGetString(k).(lua.LNumber)
		return float64(n)
	}
	str := func(k string) string {
		s, _ := t.RawGetString(k).(lua.LString)
		return string(s)
	}
	unix := func(f float64) time.Time {
		if f == 0 {
			return time.Time{}
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9))
	}
	return MailResult{
		Job:      str("job_name"),
		Serial:   uint64(num("serial")),
		Code:     int(num("code")),
		Signal:   str("signal"),
		Error:    str("error"),
		Start:    unix(num("start_time")),
		End:      unix(num("end_time")),
		Duration: time.Duration(num("duration") * float64(time.Second)),
	}
}

// MailMessage builds the message mailto sends, ready for `sendmail -t`: a
// Subject naming the job, its serial and exit status, a short summary, and
// the job's output read from r.Output, capped at MailOutputCap.
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
	writeOutput(&b, r.Output)
	return b.Bytes()
}

func writeOutput(b *bytes.Buffer, path string) {
	if path == "" {
		b.WriteString("(no output file)\n")
		return
	}
	// Without blocking on a FIFO, following no symbolic link, and only a
	// regular file: the run's script may have replaced its output.txt.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		fmt.Fprintf(b, "(output not readable: %v)\n", err)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		fmt.Fprintf(b, "(output not readable: %s is not a regular file)\n", path)
		return
	}
	n, err := io.Copy(b, io.LimitReader(f, MailOutputCap))
	if err != nil {
		fmt.Fprintf(b, "\n(output not readable: %v)\n", err)
		return
	}
	if n == 0 {
		b.WriteString("(no output)\n")
		return
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		fmt.Fprintf(b, "[%d more bytes of output left out]\n", fi.Size()-n)
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
