package lualib

import (
	"math"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/whenlua/whenlua"
)

// Result is what a post function gets: the daemon's record of one run.
// The binding hands it to Lua as a read-only gopher-luar userdata: the
// fields by their tag names, and r:output(), the run's captured output as
// the daemon stored it (its head and tail when it was long). Lua cannot
// make one, so a function given a Result (mailto) reads the daemon's own
// record of a run, never a path or text a job file chose.
type Result struct {
	JobName    string     `luar:"job_name"`
	Serial     uint64     `luar:"serial"`
	Code       int        `luar:"code"`
	Signal     lua.LValue `luar:"signal"` // nil when none
	Error      lua.LValue `luar:"error"`  // nil when none
	Tmpdir     string     `luar:"tmpdir"`
	StartTime  float64    `luar:"start_time"`
	EndTime    float64    `luar:"end_time"`
	Duration   float64    `luar:"duration"`
	OutputSize int64      `luar:"output_size"` // bytes the job wrote in all
	// Attempt is the attempt's number (1 without the retry option); Final
	// is false when a failed attempt is to be retried.
	Attempt int  `luar:"attempt"`
	Final   bool `luar:"final"`

	output []byte
}

// NewResult makes the Result of run r, whose directory is tmpdir.
func NewResult(r whenlua.Run, tmpdir string) Result {
	res := Result{
		JobName:    r.Job,
		Serial:     r.Serial,
		Code:       r.Code,
		Signal:     lua.LNil,
		Error:      lua.LNil,
		Tmpdir:     tmpdir,
		StartTime:  unixSeconds(r.Start),
		EndTime:    unixSeconds(r.End),
		Duration:   r.Duration().Seconds(),
		OutputSize: r.OutputSize,
		Attempt:    max(r.Attempt, 1),
		Final:      r.RetryAt.IsZero(),
		output:     r.Output,
	}
	if r.Signal != "" {
		res.Signal = lua.LString(r.Signal)
	}
	if r.Error != "" {
		res.Error = lua.LString(r.Error)
	}
	return res
}

// Output is r:output() in Lua: the run's output as stored.
func (r Result) Output() string { return string(r.output) }

// ResultOf returns the Result that v holds, and false when v is anything
// else (a table made in Lua, say).
func ResultOf(v lua.LValue) (Result, bool) {
	ud, ok := v.(*lua.LUserData)
	if !ok {
		return Result{}, false
	}
	r, ok := ud.Value.(Result)
	return r, ok
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func fromUnixSeconds(f float64) time.Time {
	if f == 0 {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}
