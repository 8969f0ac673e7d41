package spec

import (
	"strings"
	"testing"
	"time"
)

func TestChargeOccurrences(t *testing.T) {
	jakarta, err := time.LoadLocation("Asia/Jakarta")
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(loc *time.Location, s string) time.Time {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name       string
		schedule   string
		loc        *time.Location
		start, end string // "" for none
		from, to   string
		want       []string // OccurrenceLayout in loc
	}{
		{
			name: "MonthEnd31SkipsShortMonths", schedule: "0 9 31 * *", loc: jakarta,
			from: "2027-01-01 00:00", to: "2027-09-01 00:00",
			want: []string{"2027-01-31T09:00+07:00", "2027-03-31T09:00+07:00", "2027-05-31T09:00+07:00", "2027-07-31T09:00+07:00", "2027-08-31T09:00+07:00"},
		},
		{
			name: "Feb29LeapYearsOnly", schedule: "0 9 29 2 *", loc: jakarta,
			from: "2026-01-01 00:00", to: "2033-01-01 00:00",
			want: []string{"2028-02-29T09:00+07:00", "2032-02-29T09:00+07:00"},
		},
		{
			name: "ClippedToStartAndEnd", schedule: "0 9 1 * *", loc: jakarta,
			start: "2026-12-01 00:00", end: "2027-03-01 00:00", // a date end is midnight: 1 March 09:00 is after it
			from: "2026-01-01 00:00", to: "2028-01-01 00:00",
			want: []string{"2026-12-01T09:00+07:00", "2027-01-01T09:00+07:00", "2027-02-01T09:00+07:00"},
		},
		{
			name: "EndInclusive", schedule: "0 9 1 * *", loc: jakarta,
			start: "2026-12-01 00:00", end: "2027-01-01 09:00",
			from: "2026-01-01 00:00", to: "2028-01-01 00:00",
			want: []string{"2026-12-01T09:00+07:00", "2027-01-01T09:00+07:00"},
		},
		{
			name: "FromInclusiveToExclusive", schedule: "0 9 * * *", loc: jakarta,
			from: "2026-12-01 09:00", to: "2026-12-03 09:00",
			want: []string{"2026-12-01T09:00+07:00", "2026-12-02T09:00+07:00"},
		},
		{
			name: "EmptyRange", schedule: "0 9 * * *", loc: jakarta,
			from: "2026-12-01 10:00", to: "2026-12-02 09:00",
		},
		{
			name: "Descriptor", schedule: "@monthly", loc: jakarta,
			from: "2026-11-15 00:00", to: "2027-01-15 00:00",
			want: []string{"2026-12-01T00:00+07:00", "2027-01-01T00:00+07:00"},
		},
		{
			name: "DayOfMonthOrDayOfWeek", schedule: "0 9 1 * 1", loc: jakarta, // cron's rule: either matches
			from: "2026-12-01 00:00", to: "2026-12-15 00:00",
			want: []string{"2026-12-01T09:00+07:00", "2026-12-07T09:00+07:00", "2026-12-14T09:00+07:00"},
		},
		// New York, 8 March 2026: 02:00 EST becomes 03:00 EDT. 02:30 does
		// not exist that night: it fires once, when the clocks jump.
		{
			name: "NewYorkGapFiresAtTheJump", schedule: "30 2 * * *", loc: ny,
			from: "2026-03-07 00:00", to: "2026-03-10 00:00",
			want: []string{"2026-03-07T02:30-05:00", "2026-03-08T03:00-04:00", "2026-03-09T02:30-04:00"},
		},
		{
			name: "NewYorkGapTimesFireOnce", schedule: "*/20 2 * * *", loc: ny,
			from: "2026-03-08 00:00", to: "2026-03-09 00:00",
			want: []string{"2026-03-08T03:00-04:00"},
		},
		{
			name: "NewYorkGapThenNextHour", schedule: "30 2,3 8 3 *", loc: ny,
			from: "2026-03-08 00:00", to: "2026-03-09 00:00",
			want: []string{"2026-03-08T03:00-04:00", "2026-03-08T03:30-04:00"},
		},
		{
			name: "DSTSpringForwardKeepsWallClock", schedule: "0 9 * * *", loc: ny,
			from: "2026-03-07 00:00", to: "2026-03-10 00:00",
			want: []string{"2026-03-07T09:00-05:00", "2026-03-08T09:00-04:00", "2026-03-09T09:00-04:00"},
		},
		// New York, 1 November 2026: 02:00 EDT becomes 01:00 EST. 01:30
		// happens twice: one occurrence, at the first.
		{
			name: "NewYorkOverlapOnce", schedule: "30 1 * * *", loc: ny,
			from: "2026-10-31 00:00", to: "2026-11-03 00:00",
			want: []string{"2026-10-31T01:30-04:00", "2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"},
		},
		{
			name: "DSTFallBackKeepsWallClock", schedule: "0 9 * * *", loc: ny,
			from: "2026-10-31 00:00", to: "2026-11-03 00:00",
			want: []string{"2026-10-31T09:00-04:00", "2026-11-01T09:00-05:00", "2026-11-02T09:00-05:00"},
		},
		{
			name: "HourlyAcrossFallBack", schedule: "0 0-3 1 11 *", loc: ny,
			from: "2026-11-01 00:00", to: "2026-11-02 00:00",
			want: []string{"2026-11-01T00:00-04:00", "2026-11-01T01:00-04:00", "2026-11-01T02:00-05:00", "2026-11-01T03:00-05:00"},
		},
		// Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST; 25 October
		// 2026: 03:00 CEST becomes 02:00 CET.
		{
			name: "BerlinGapFiresAtTheJump", schedule: "30 2 * * *", loc: berlin,
			from: "2026-03-28 00:00", to: "2026-03-31 00:00",
			want: []string{"2026-03-28T02:30+01:00", "2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00"},
		},
		{
			name: "BerlinOverlapOnce", schedule: "30 2 * * *", loc: berlin,
			from: "2026-10-24 00:00", to: "2026-10-27 00:00",
			want: []string{"2026-10-24T02:30+02:00", "2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"},
		},
		{
			name: "BerlinEveryQuarterHourAcrossFallBack", schedule: "*/15 2 25 10 *", loc: berlin,
			from: "2026-10-25 00:00", to: "2026-10-26 00:00",
			want: []string{"2026-10-25T02:00+02:00", "2026-10-25T02:15+02:00", "2026-10-25T02:30+02:00", "2026-10-25T02:45+02:00"},
		},
		{
			name: "NilLocationIsUTC", schedule: "0 9 1 * *", loc: nil,
			from: "2026-12-01 00:00", to: "2027-01-01 00:00",
			want: []string{"2026-12-01T09:00Z"},
		},
		{
			name: "InvalidSchedule", schedule: "0 9 * *", loc: jakarta,
			from: "2026-12-01 00:00", to: "2027-01-01 00:00",
		},
		{
			name: "EveryRefused", schedule: "@every 1h", loc: jakarta,
			from: "2026-12-01 00:00", to: "2027-01-01 00:00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := tt.loc
			parseLoc := loc
			if parseLoc == nil {
				parseLoc = time.UTC
			}
			c := Charge{Address: "recurring_charge.c", Schedule: tt.schedule}
			if tt.start != "" {
				c.Start = at(parseLoc, tt.start)
			}
			if tt.end != "" {
				c.End = at(parseLoc, tt.end)
			}
			var got []string
			for _, o := range c.Occurrences(at(parseLoc, tt.from), at(parseLoc, tt.to), loc) {
				if o.Location() != parseLoc {
					t.Errorf("occurrence %v is in %v, want %v", o, o.Location(), parseLoc)
				}
				got = append(got, o.Format(OccurrenceLayout))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("Occurrences=%v, want %v", got, tt.want)
			}
		})
	}
}

func TestOccurrenceAddress(t *testing.T) {
	jakarta, err := time.LoadLocation("Asia/Jakarta")
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		charge string
		loc    *time.Location
		want   string
	}{
		{"recurring_charge.gym", jakarta, "recurring_charge.gym#2026-12-01T09:00+07:00"},
		{`recurring_charge.gym["alice"]`, jakarta, `recurring_charge.gym["alice"]#2026-12-01T09:00+07:00`},
		{"recurring_charge.gym", nil, "recurring_charge.gym#2026-12-01T02:00Z"},
	}
	for _, tt := range tests {
		got := OccurrenceAddress(tt.charge, when, tt.loc)
		if got != tt.want {
			t.Errorf("OccurrenceAddress(%q)=%q, want %q", tt.charge, got, tt.want)
		}
		charge, at, err := ParseOccurrenceAddress(got)
		if err != nil || charge != tt.charge || !at.Equal(when) {
			t.Errorf("ParseOccurrenceAddress(%q)=%q, %v, %v; want %q, %v", got, charge, at, err, tt.charge, when)
		}
	}
}

func TestParseOccurrenceAddress(t *testing.T) {
	ok := []struct {
		in, charge string
		at         time.Time
	}{
		{"recurring_charge.gym#2026-12-01T09:00+07:00", "recurring_charge.gym", time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)},
		{"recurring_charge.gym#2026-12-01T02:00Z", "recurring_charge.gym", time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)},
		{"recurring_charge.gym#2026-12-01T09:00:00+07:00", "recurring_charge.gym", time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)},
		{`recurring_charge.team["a#b]"]#2026-12-01T09:00+07:00`, `recurring_charge.team["a#b]"]`, time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)},
		{`recurring_charge.team["\u00e9"]#2026-12-01T09:00+07:00`, `recurring_charge.team["é"]`, time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)},
	}
	for _, tt := range ok {
		charge, at, err := ParseOccurrenceAddress(tt.in)
		if err != nil || charge != tt.charge || !at.Equal(tt.at) {
			t.Errorf("ParseOccurrenceAddress(%q)=%q, %v, %v; want %q, %v", tt.in, charge, at, err, tt.charge, tt.at)
		}
	}
	bad := []string{
		"",
		"INV-1",
		"recurring_charge.gym",
		"recurring_charge.#2026-12-01T09:00+07:00",
		"recurring_charge.1gym#2026-12-01T09:00+07:00",
		"recurring_charge.gym#2026-12-01",
		"recurring_charge.gym#tomorrow",
		`recurring_charge.gym[alice]#2026-12-01T09:00+07:00`,
		`recurring_charge.gym["alice"#2026-12-01T09:00+07:00`,
		`recurring_charge.gym[""]#2026-12-01T09:00+07:00`,
		`recurring_charge.gym["alice"]2026-12-01T09:00+07:00`,
		`recurring_charge.gym["alice`,
	}
	for _, in := range bad {
		if charge, at, err := ParseOccurrenceAddress(in); err == nil {
			t.Errorf("ParseOccurrenceAddress(%q)=%q, %v; want an error", in, charge, at)
		}
	}
}

// FuzzParseOccurrenceAddress checks that a parsed address formats back to
// an address that parses to the same charge and instant.
func FuzzParseOccurrenceAddress(f *testing.F) {
	f.Add("recurring_charge.gym#2026-12-01T09:00+07:00")
	f.Add(`recurring_charge.team["alice"]#2026-12-01T09:00Z`)
	f.Fuzz(func(t *testing.T, s string) {
		charge, at, err := ParseOccurrenceAddress(s)
		if err != nil {
			return
		}
		again, at2, err := ParseOccurrenceAddress(OccurrenceAddress(charge, at, time.UTC))
		if err != nil || again != charge || !at2.Equal(at.Truncate(time.Minute)) {
			t.Fatalf("round trip of %q: %q, %v, %v", s, again, at2, err)
		}
	})
}

// TestNextOccurrenceAcrossDST: the daemon wakes once per scheduled wall
// time, whatever the clocks do that night.
func TestNextOccurrenceAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		schedule, after, want string // RFC 3339
	}{
		// After the first 01:30 of the night clocks go back comes the
		// next day's, not the second 01:30.
		{"30 1 * * *", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"},
		{"30 1 * * *", "2026-11-01T01:00:00-05:00", "2026-11-02T01:30:00-05:00"},
		// 02:30 does not exist on 8 March: the jump to 03:00 is its time.
		{"30 2 * * *", "2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"},
		{"30 2 * * *", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"},
	}
	for _, tt := range tests {
		after, _ := time.Parse(time.RFC3339, tt.after)
		want, _ := time.Parse(time.RFC3339, tt.want)
		c := Charge{Schedule: tt.schedule}
		got, ok := c.NextOccurrence(after.Add(time.Nanosecond), ny)
		if !ok || !got.Equal(want) {
			t.Errorf("%q: NextOccurrence after %s = %v, %v; want %s", tt.schedule, tt.after, got, ok, tt.want)
		}
	}
}

// TestMissed: an occurrence is missed once the next one is due, or once
// catch_up_grace has passed since it, whichever comes first.
func TestMissed(t *testing.T) {
	jakarta, err := time.LoadLocation("Asia/Jakarta")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, jakarta)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		schedule string
		grace    time.Duration
		occ, now string
		want     bool
	}{
		{"0 9 * * *", 0, "2026-12-01 09:00", "2026-12-01 09:30", false},
		{"0 9 * * *", 0, "2026-12-01 09:00", "2026-12-01 10:00", false}, // exactly the grace
		{"0 9 * * *", 0, "2026-12-01 09:00", "2026-12-01 10:01", true},
		{"0 9 * * *", 6 * time.Hour, "2026-12-01 09:00", "2026-12-01 14:59", false},
		{"0 9 * * *", 48 * time.Hour, "2026-12-01 09:00", "2026-12-02 09:00", true}, // the next is due
		{"*/3 * * * *", 0, "2026-12-01 09:00", "2026-12-01 09:02", false},
		{"*/3 * * * *", 0, "2026-12-01 09:00", "2026-12-01 09:03", true},
		{"*/3 * * * *", 0, "2026-12-01 09:57", "2026-12-01 09:59", false},
	}
	for _, tt := range tests {
		c := Charge{Schedule: tt.schedule, CatchUpGrace: tt.grace}
		if got := c.Missed(at(tt.occ), at(tt.now), jakarta); got != tt.want {
			t.Errorf("%q grace %v: Missed(%s at %s)=%v, want %v", tt.schedule, tt.grace, tt.occ, tt.now, got, tt.want)
		}
	}
}

// TestJumped: an occurrence is one the clocks jumped to only when the
// scheduled wall-clock time did not exist that night; a time scheduled
// for itself (03:00) is not, even at the instant of a jump.
func TestJumped(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		schedule, at string
		want         bool
	}{
		{"30 2 * * *", "2026-03-08T03:00:00-04:00", true},  // 02:30 did not exist
		{"30 2 * * *", "2026-03-09T02:30:00-04:00", false}, // the next day's
		{"0 3 * * *", "2026-03-08T03:00:00-04:00", false},  // 03:00 scheduled for itself
		{"30 1 * * *", "2026-11-01T01:30:00-04:00", false}, // twice that night, first
	} {
		c := Charge{Schedule: tt.schedule}
		occ := c.Occurrences(at(tt.at), at(tt.at).Add(time.Second), ny)
		if len(occ) != 1 {
			t.Fatalf("%q has no occurrence at %s", tt.schedule, tt.at)
		}
		if got := c.Jumped(occ[0], ny); got != tt.want {
			t.Errorf("%q at %s: Jumped=%v, want %v", tt.schedule, tt.at, got, tt.want)
		}
	}
}
