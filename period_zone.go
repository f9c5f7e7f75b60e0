package whenlua

import "time"

// NextIn is Next read in a time zone (an every-job's tz option): periods
// of a day or more fall on local midnights of loc, counted in calendar
// days (23 or 25 hours long across a DST change) from 1970-01-01 (a
// Thursday, for weeks), in months from 1970-01 and in years from 1970. A
// midnight that a DST change skips is replaced by the end of the gap, one
// it repeats counts at its first occurrence, as for cron. Shorter periods,
// and a nil loc, keep Next's epoch alignment. The result is in loc.
func (p Period) NextIn(after time.Time, loc *time.Location) time.Time {
	if loc == nil || p.Unit < Day {
		t := p.Next(after)
		if loc != nil {
			t = t.In(loc)
		}
		return t
	}
	n := int64(max(p.N, 1))
	y, m, d := after.In(loc).Date()
	// k indexes the candidate periods; at(k) is the wall date it starts on.
	var k int64
	var at func(k int64) time.Time
	switch p.Unit {
	case Day, Week:
		if p.Unit == Week {
			n *= 7
		}
		day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
		k = floorDiv(day, n)
		at = func(k int64) time.Time { return time.Unix(k*n*86400, 0).UTC() }
	case Month:
		k = floorDiv(int64(y-1970)*12+int64(m-1), n)
		at = func(k int64) time.Time { return time.Date(1970, time.Month(k*n+1), 1, 0, 0, 0, 0, time.UTC) }
	default:
		k = floorDiv(int64(y-1970), n)
		at = func(k int64) time.Time { return time.Date(1970+int(k*n), time.January, 1, 0, 0, 0, 0, time.UTC) }
	}
	// k is the period holding after's local date; its start is normally
	// not after `after`, and the loop moves on to the next.
	for ; ; k++ {
		if t := firstWallInstant(loc, at(k).Unix()); t.After(after) {
			return t
		}
	}
}
