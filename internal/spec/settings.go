package spec

import (
	"errors"
	"path/filepath"
	"time"
	_ "time/tzdata" // the default time zone must load on hosts without a zoneinfo database

	"github.com/hashicorp/hcl/v2"
)

// Defaults of the settings block.
const (
	defaultTimezone        = "Asia/Jakarta"
	defaultState           = "ddctl.db"
	defaultReferencePrefix = "DDCTL"
)

// Settings holds the settings block, or its defaults when there is none.
type Settings struct {
	Timezone        string         // default "Asia/Jakarta"
	Location        *time.Location // loaded from Timezone
	State           string         // state file; default "ddctl.db"; a relative path is joined with Config.Dir
	ReferencePrefix string         // namespaces idempotency keys per merchant; default "DDCTL"; 1-24 of [A-Za-z0-9]
}

var settingsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "timezone"},
		{Name: "state"},
		{Name: "reference_prefix"},
	},
}

// decodeSettings decodes the settings block, at most one of them. The
// result is complete (defaults filled in) even after errors, so that the
// rest of the configuration can still be checked.
func (l *loader) decodeSettings(blocks []*hcl.Block, ctx *hcl.EvalContext) Settings {
	s := Settings{
		Timezone:        defaultTimezone,
		State:           defaultState,
		ReferencePrefix: defaultReferencePrefix,
	}
	s.Location, _ = time.LoadLocation(defaultTimezone) // embedded by time/tzdata
	if len(blocks) > 0 {
		for _, b := range blocks[1:] {
			l.duplicate(b, blocks[0], "settings", "A configuration has at most one settings block; merge the two.")
		}
		l.decodeSettingsBlock(blocks[0], scope{ctx: ctx}, &s)
	}
	if !filepath.IsAbs(s.State) {
		s.State = filepath.Join(l.dir, s.State)
	}
	return s
}

func (l *loader) decodeSettingsBlock(b *hcl.Block, sc scope, s *Settings) {
	content, diags := b.Body.Content(settingsSchema)
	l.diags = append(l.diags, diags...)
	attrs := content.Attributes

	if tz, ok := l.str(sc, attrs["timezone"], false); ok {
		loc, err := loadLocation(tz)
		if err != nil {
			l.errorf(attrs["timezone"].Expr.Range().Ptr(), "Invalid time zone",
				"%q is not a time zone ddctl knows. Use an IANA time zone name such as \"Asia/Jakarta\" or \"UTC\".", tz)
		} else {
			s.Timezone, s.Location = tz, loc
		}
	}
	if state, ok := l.str(sc, attrs["state"], false); ok {
		if state == "" {
			l.errorf(attrs["state"].Expr.Range().Ptr(), "Invalid state",
				"state is the path of the state file and must not be empty; omit it to use %q.", defaultState)
		} else {
			s.State = state
		}
	}
	if prefix, ok := l.str(sc, attrs["reference_prefix"], false); ok {
		if !validReferencePrefix(prefix) {
			l.errorf(attrs["reference_prefix"].Expr.Range().Ptr(), "Invalid reference_prefix",
				"%q is not a valid reference_prefix: it must be 1 to 24 letters or digits (A-Z, a-z, 0-9), because it starts every idempotency key ddctl sends to DOKU.", prefix)
		} else {
			s.ReferencePrefix = prefix
		}
	}
}

// loadLocation is time.LoadLocation without the two names whose meaning
// depends on the machine: "" and "Local". The same file must schedule the
// same instants on a laptop and in CI.
func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, errors.New("a machine-dependent time zone")
	}
	return time.LoadLocation(name)
}

// validReferencePrefix reports whether s is 1-24 ASCII letters or digits.
func validReferencePrefix(s string) bool {
	if len(s) < 1 || len(s) > 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
