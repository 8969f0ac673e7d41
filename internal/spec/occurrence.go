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
// fixed instants that addresses and idempotency keys can name (DESIGN.md
// principle 2); and a TZ= or CRON_TZ= prefix, because schedules run in
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

// next returns the first occurrence after t in loc, or the zero time when
// there is none within five years (cron/v3's search limit).
func (s scheduleSpec) next(t time.Time, loc *time.Location) time.Time {
	if s.spec == nil {
		return time.Time{}
	}
	spec := *s.spec // cron reads Location; the parsed value is not shared
	spec.Location = loc
	next := spec.Next(t.In(loc))
	if next.IsZero() {
		return next
	}
	return next.In(loc)
}

// Occurrences returns the instants in [from, to) at which the charge's
// schedule fires, evaluated in loc (Settings.Location; nil means UTC), and
// clipped to [Start, End] (a zero Start or End does not clip). The times
// are in loc, in increasing order. It returns nil when the schedule does
// not parse (a Charge not made by Load).
//
// The schedule is robfig/cron/v3's, with its behaviour at daylight saving
// changes, which this package's tests pin for America/New_York:
//   - a time that does not exist (02:30 on the night clocks go forward) is
//     skipped: there is no occurrence that day;
//   - a time that exists twice (01:30 on the night clocks go back) fires
//     twice, once per offset (01:30-04:00 and 01:30-05:00), and the two
//     occurrences have different addresses;
//   - a month without the day (the 31st, or the 29th of February outside
//     leap years) has no occurrence.
//
// cron/v3 gives up looking after five years without an occurrence, so a
// schedule whose occurrences are further apart than that (the 29th of
// February across 2100) ends early. Missed occurrences and catch-up are the
// planner's business, not this function's.
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
	var out []time.Time
	// next(t) is the first occurrence strictly after t; occurrences fall on
	// whole seconds, so starting from a nanosecond before from includes from.
	for t := sched.next(from.Add(-time.Nanosecond), loc); !t.IsZero() && t.Before(to); t = sched.next(t, loc) {
		out = append(out, t)
	}
	return out
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
