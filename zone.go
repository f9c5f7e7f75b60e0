package whenlua

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// LoadZone returns the IANA time zone name (e.g. "Europe/Berlin"); "" and
// "Local" mean the daemon's local zone, "UTC" UTC. An unknown name is an
// error wrapping ErrInvalid.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	if strings.TrimSpace(name) != name || strings.ContainsAny(name, "\x00") {
		return nil, fmt.Errorf("%w: time zone %q: not an IANA zone name (e.g. \"Europe/Berlin\")", ErrInvalid, name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w: time zone %q: unknown (want an IANA name such as \"Europe/Berlin\" or \"UTC\")", ErrInvalid, name)
	}
	return loc, nil
}

// ZoneName names loc for listings: its IANA name, or for the daemon's local
// zone the name the system gives it (TZ, else the /etc/localtime link),
// falling back to "Local".
func ZoneName(loc *time.Location) string {
	if loc == nil {
		return "UTC"
	}
	if loc != time.Local {
		return loc.String()
	}
	return localZoneName()
}

// localZoneName is the name of time.Local, which Go sets once per process.
var localZoneName = sync.OnceValue(func() string {
	if tz := strings.TrimPrefix(os.Getenv("TZ"), ":"); tz != "" && !strings.HasPrefix(tz, "/") {
		return tz
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		if _, name, ok := strings.Cut(target, "zoneinfo/"); ok && name != "" {
			return name
		}
	}
	return time.Local.String()
})

// wallInstants returns the instants, earliest first, at which the wall
// clock of loc reads naive (seconds since 1970-01-01 00:00 of the wall
// clock, counted as if it were UTC): none in a spring-forward gap, two in a
// fall-back repeat, one otherwise. buf is reused for the result.
func wallInstants(loc *time.Location, naive int64, buf []time.Time) []time.Time {
	buf = buf[:0]
	var offs [4]int
	n := zoneOffsets(loc, naive, offs[:])
	for _, off := range offs[:n] {
		t := time.Unix(naive-int64(off), 0).In(loc)
		if _, o := t.Zone(); o != off {
			continue
		}
		i := len(buf)
		buf = append(buf, t)
		for ; i > 0 && buf[i].Before(buf[i-1]); i-- {
			buf[i], buf[i-1] = buf[i-1], buf[i]
		}
	}
	return buf
}

// gapEnd returns, for a wall time of loc that does not exist (it lies in a
// spring-forward gap), the instant the gap ends: the first instant whose
// wall clock reads later than naive. That is when ISC cron runs a job
// whose time was skipped.
func gapEnd(loc *time.Location, naive int64) time.Time {
	var offs [4]int
	n := zoneOffsets(loc, naive, offs[:])
	lo := offs[0]
	for _, off := range offs[:n] {
		lo = min(lo, off)
	}
	// Read with the smallest offset in effect nearby, the wall time names an
	// instant after the change; the zone in effect there began at it.
	start, _ := time.Unix(naive-int64(lo), 0).In(loc).ZoneBounds()
	if start.IsZero() {
		return time.Unix(naive-int64(lo), 0).In(loc)
	}
	return start.In(loc)
}

// firstWallInstant returns the first instant at which loc's wall clock
// reads naive, or the end of the gap when it never does: the instant ISC
// cron runs a fixed-time job.
func firstWallInstant(loc *time.Location, naive int64) time.Time {
	var buf [2]time.Time
	if ts := wallInstants(loc, naive, buf[:0]); len(ts) > 0 {
		return ts[0]
	}
	return gapEnd(loc, naive)
}

// zoneOffsets fills offs with the distinct UTC offsets loc uses at any
// instant whose wall clock could read naive (UTC offsets lie within
// -12h..+14h) and returns how many there are.
func zoneOffsets(loc *time.Location, naive int64, offs []int) int {
	from := naive - 15*3600
	to := naive + 13*3600
	t := time.Unix(from, 0).In(loc)
	n := 0
	for n < len(offs) {
		_, off := t.Zone()
		seen := false
		for _, o := range offs[:n] {
			seen = seen || o == off
		}
		if !seen {
			offs[n] = off
			n++
		}
		_, end := t.ZoneBounds()
		if end.IsZero() || end.Unix() > to {
			break
		}
		t = end.In(loc)
	}
	return n
}

// minOffsetAround is the smallest UTC offset loc uses at the instants from
// 15 hours before t to 25 hours after it: a wall time that reads no later
// than t's Unix seconds plus this offset has no instant after t.
func minOffsetAround(loc *time.Location, t time.Time) int {
	var offs [8]int
	n := zoneOffsets(loc, t.Unix(), offs[:4])
	n += zoneOffsets(loc, t.Unix()+12*3600, offs[n:])
	lo := offs[0]
	for _, off := range offs[:n] {
		lo = min(lo, off)
	}
	return lo
}
