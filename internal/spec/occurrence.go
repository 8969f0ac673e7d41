package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// OccurrenceLayout is how the time of an occurrence is written in its
// address (recurring_charge.gym#2026-12-01T09:00+07:00): minutes, because a
// 5-field cron schedule has no seconds, and the offset of the charge's time
// zone at that instant, which tells apart the two 01:30 of a night when
// clocks go back.
const OccurrenceLayout = "2006-01-02T15:04Z07:00"

// chargePrefix starts every recurring charge address.
const chargePrefix = "recurring_charge."

// scheduleSpec is a parsed schedule. The zero value has no occurrences.
type scheduleSpec struct {
	spec *cron.SpecSchedule
}

// parseSchedule parses a schedule with robfig/cron/v3's standard parser:
// five fields (minute hour day-of-month month day-of-week) or a descriptor
// such as @daily or @monthly. Refused, although that parser takes them:
// @every, whose occurrences count from whenever it is asked and so are not
// fixed instants that addresses and idempotency keys can name (principle 2,
// docs/principles.md); and a TZ= or CRON_TZ= prefix, because schedules run in
// settings.timezone (and cron/v3 panics on a prefix without a space).
func parseSchedule(s string) (scheduleSpec, error) {
	trimmed := strings.TrimSpace(s)
	switch {
	case trimmed == "":
		return scheduleSpec{}, errors.New("it is empty")
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") ||
		strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ="):
		return scheduleSpec{}, errors.New("a time zone prefix is not allowed: schedules run in settings.timezone")
	case strings.HasPrefix(trimmed, "@every"):
		return scheduleSpec{}, errors.New("@every has no fixed occurrences; write the times as five cron fields")
	}
	sched, err := cron.ParseStandard(trimmed)
	if err != nil {
		return scheduleSpec{}, err
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return scheduleSpec{}, errors.New("it is not a calendar schedule")
	}
	return scheduleSpec{spec: spec}, nil
}

// searchYears is how far next looks for an occurrence, as cron/v3 does.
const searchYears = 5

// next returns the first occurrence strictly after t in loc, or the zero
// time when there is none within five years.
func (s scheduleSpec) next(t time.Time, loc *time.Location) time.Time {
	if s.spec == nil {
		return time.Time{}
	}
	if loc == nil {
		loc = time.UTC
	}
	var found time.Time
	d := civilDate(t, loc).AddDate(0, 0, -1)
	limit := d.AddDate(searchYears, 0, 0)
	for ; found.IsZero() && !d.After(limit); d = d.AddDate(0, 0, 1) {
		s.onDay(d, loc, func(at time.Time) bool {
			if at.After(t) {
				found = at
				return false
			}
			return true
		})
	}
	return found
}

// between returns the occurrences in [from, to), in increasing order.
func (s scheduleSpec) between(from, to time.Time, loc *time.Location) []time.Time {
	if s.spec == nil || !from.Before(to) {
		return nil
	}
	if loc == nil {
		loc = time.UTC
	}
	var out []time.Time
	last := civilDate(to, loc).AddDate(0, 0, 1)
	for d := civilDate(from, loc).AddDate(0, 0, -1); !d.After(last); d = d.AddDate(0, 0, 1) {
		s.onDay(d, loc, func(at time.Time) bool {
			if !at.Before(from) && at.Before(to) && (len(out) == 0 || at.After(out[len(out)-1])) {
				out = append(out, at)
			}
			return true
		})
	}
	return out
}

// onDay calls fn, in increasing order, with the instant of each time of
// the civil date day (a UTC midnight standing for a date) at which the
// schedule fires in loc, until fn returns false. A wall-clock time that
// occurs twice (clocks going back) is its first instant; one that does not
// occur (clocks going forward) is the instant the clocks jumped to, so
// that the times skipped by one jump all fire once, together. Instants
// come in increasing order because that mapping keeps the wall clock's
// order; a skipped time and the one after it may give the same instant.
func (s scheduleSpec) onDay(day time.Time, loc *time.Location, fn func(time.Time) bool) {
	sp := s.spec
	if sp == nil || sp.Month&(1<<uint(day.Month())) == 0 || !dayMatches(sp, day) {
		return
	}
	for h := range 24 {
		if sp.Hour&(1<<uint(h)) == 0 {
			continue
		}
		for m := range 60 {
			if sp.Minute&(1<<uint(m)) == 0 {
				continue
			}
			for sec := range 60 {
				if sp.Second&(1<<uint(sec)) == 0 {
					continue
				}
				if !fn(wallInstant(day.Year(), day.Month(), day.Day(), h, m, sec, loc)) {
					return
				}
			}
		}
	}
}

// starBit marks a cron field written "*" (cron/v3's own convention).
const starBit = 1 << 63

// dayMatches is cron's day rule for the civil date day: with "*" in the
// day-of-month or day-of-week field, both must match; otherwise either.
func dayMatches(sp *cron.SpecSchedule, day time.Time) bool {
	dom := sp.Dom&(1<<uint(day.Day())) != 0
	dow := sp.Dow&(1<<uint(day.Weekday())) != 0
	if sp.Dom&starBit != 0 || sp.Dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

// civilDate is t's date in loc, as midnight UTC of that date.
func civilDate(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// wallInstant is the instant at which loc's clocks show the given date and
// time: the first of the two when the clocks go back over it, and the
// instant they jumped to when they went forward over it (02:30 on the
// night New York goes from 02:00 to 03:00 is 03:00 EDT). Zone changes are
// taken to be more than a day apart, as they are in every zone in use.
func wallInstant(y int, mo time.Month, d, h, mi, sec int, loc *time.Location) time.Time {
	naive := time.Date(y, mo, d, h, mi, sec, 0, time.UTC).Unix()
	var offsets [3]int
	for i, probe := range [3]int64{naive - 86400, naive, naive + 86400} {
		_, offsets[i] = time.Unix(probe, 0).In(loc).Zone()
	}
	var first time.Time
	for _, off := range offsets {
		t := time.Unix(naive-int64(off), 0).In(loc)
		if _, o := t.Zone(); o == off && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if !first.IsZero() {
		return first
	}
	// No offset in force around it gives this wall time: the clocks
	// jumped over it. Read with the offset from before the jump, it is an
	// instant after the jump; the zone of that instant began at the jump.
	start, _ := time.Unix(naive-int64(offsets[0]), 0).In(loc).ZoneBounds()
	return start.In(loc)
}

// Occurrences returns the instants in [from, to) at which the charge's
// schedule fires, evaluated in loc (Settings.Location; nil means UTC), and
// clipped to [Start, End] (a zero Start or End does not clip). The times
// are in loc, in increasing order. It returns nil when the schedule does
// not parse (a Charge not made by Load).
//
// The schedule fires at wall-clock times of loc; where daylight saving
// time moves the clocks, each scheduled wall-clock time fires once:
//   - a time that exists twice (01:30 on the night clocks go back) is one
//     occurrence, at its first instant (01:30-04:00 in New York);
//   - a time that does not exist (02:30 on the night clocks go forward)
//     fires once, at the first instant after the jump (03:00-04:00 in New
//     York); the times one jump skips all fire then, as one occurrence;
//   - a month without the day (the 31st, or the 29th of February outside
//     leap years) has no occurrence.
//
// A schedule whose occurrences are more than five years apart (the 29th
// of February across 2100) ends early, as cron/v3's does. Missed
// occurrences and catch-up are the planner's business, not this
// function's.
func (c Charge) Occurrences(from, to time.Time, loc *time.Location) []time.Time {
	sched, err := parseSchedule(c.Schedule)
	if err != nil {
		return nil
	}
	if loc == nil {
		loc = time.UTC
	}
	if !c.Start.IsZero() && from.Before(c.Start) {
		from = c.Start
	}
	if !c.End.IsZero() && to.After(c.End) {
		to = c.End.Add(time.Nanosecond) // End is inclusive
	}
	return sched.between(from, to, loc)
}

// Jumped reports whether the occurrence at of c is one the clocks of loc
// jumped to: a scheduled wall-clock time that did not exist that night
// (02:30 when 02:00 became 03:00), and not a scheduled time of its own.
// Schedulers that skip such times (cron/v3, which ddctl followed before)
// had no occurrence there.
func (c Charge) Jumped(at time.Time, loc *time.Location) bool {
	sched, err := parseSchedule(c.Schedule)
	if err != nil || sched.spec == nil {
		return false
	}
	if loc == nil {
		loc = time.UTC
	}
	w, sp := at.In(loc), sched.spec
	scheduled := sp.Month&(1<<uint(w.Month())) != 0 && dayMatches(sp, civilDate(at, loc)) &&
		sp.Hour&(1<<uint(w.Hour())) != 0 && sp.Minute&(1<<uint(w.Minute())) != 0 && sp.Second&(1<<uint(w.Second())) != 0
	return !scheduled
}

// nextOccurrence returns c's first occurrence at or after t, if there is
// one within five years.
func (c Charge) nextOccurrence(t time.Time, loc *time.Location) (time.Time, bool) {
	sched, err := parseSchedule(c.Schedule)
	if err != nil {
		return time.Time{}, false
	}
	if !c.Start.IsZero() && t.Before(c.Start) {
		t = c.Start
	}
	next := sched.next(t.Add(-time.Nanosecond), loc)
	if next.IsZero() || !c.End.IsZero() && next.After(c.End) {
		return time.Time{}, false
	}
	return next, true
}

// NextOccurrence returns c's first occurrence at or after t in loc, if
// there is one within five years and before End: when the daemon next has
// something to do for c.
func (c Charge) NextOccurrence(t time.Time, loc *time.Location) (time.Time, bool) {
	return c.nextOccurrence(t, loc)
}

// isOccurrence reports whether t is one of c's occurrences in loc.
func (c Charge) isOccurrence(t time.Time, loc *time.Location) bool {
	occ := c.Occurrences(t, t.Add(time.Nanosecond), loc)
	return len(occ) == 1 && occ[0].Equal(t)
}

// OccurrenceAddress is the address of the occurrence at t of the charge at
// chargeAddr: recurring_charge.gym#2026-12-01T09:00+07:00, the time written
// in loc (nil means UTC) with OccurrenceLayout.
func OccurrenceAddress(chargeAddr string, t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return chargeAddr + "#" + t.In(loc).Format(OccurrenceLayout)
}

// ParseOccurrenceAddress splits an occurrence address into the charge's
// address (its key, if any, re-quoted with strconv.Quote) and the instant.
// The time may be written with OccurrenceLayout or as RFC 3339; any offset
// is accepted, and the instant is what counts. It returns an error saying
// what is wrong when s is not recurring_charge.NAME#TIME or
// recurring_charge.NAME["KEY"]#TIME.
func ParseOccurrenceAddress(s string) (chargeAddr string, at time.Time, err error) {
	rest, ok := strings.CutPrefix(s, chargePrefix)
	if !ok {
		return "", time.Time{}, fmt.Errorf("it does not start with %q", chargePrefix)
	}
	end := strings.IndexAny(rest, "[#")
	if end < 0 {
		return "", time.Time{}, errors.New("it has no #TIME after the charge's name")
	}
	name := rest[:end]
	if !validName(name) {
		return "", time.Time{}, fmt.Errorf("%q is not a valid recurring_charge name", name)
	}
	rest = rest[end:]
	key := ""
	if strings.HasPrefix(rest, "[") {
		quoted, err := strconv.QuotedPrefix(rest[1:])
		if err != nil || !strings.HasPrefix(quoted, `"`) {
			return "", time.Time{}, errors.New(`the key must be a double-quoted string, as in recurring_charge.NAME["KEY"]#TIME`)
		}
		key, _ = strconv.Unquote(quoted)
		rest = rest[1+len(quoted):]
		if !strings.HasPrefix(rest, "]") {
			return "", time.Time{}, errors.New(`the key must be followed by "]"`)
		}
		rest = rest[1:]
		if key == "" {
			return "", time.Time{}, errors.New("the key is empty")
		}
	}
	ts, ok := strings.CutPrefix(rest, "#")
	if !ok {
		return "", time.Time{}, errors.New("it has no #TIME after the charge's address")
	}
	at, err = time.Parse(OccurrenceLayout, ts)
	if err != nil {
		if at, err = time.Parse(time.RFC3339, ts); err != nil {
			return "", time.Time{}, fmt.Errorf("the time %q is not written like 2026-12-01T09:00+07:00", ts)
		}
	}
	return instanceAddress("recurring_charge", name, key), at, nil
}
