package spec

import (
	"errors"
	"path/filepath"
	"time"
	_ "time/tzdata" // the default time zone must load on hosts without a zoneinfo database

	"github.com/hashicorp/hcl/v2"

	"github.com/ddctl/ddctl/internal/money"
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
	Limits          Limits         // the limits block; the zero value limits nothing
}

// Limits are the settings block's limits block: how much money one plan
// may move, so that a wrong input (a CSV with amounts in sen instead of
// rupiah, a for_each over the wrong list) is stopped before anything is
// sent. A zero field sets no limit. A plan that breaks one sends nothing
// unless its apply overrides the limits, with a reason that is recorded.
type Limits struct {
	Refund          money.Amount // the largest single refund
	Charge          money.Amount // the largest single charge (one occurrence's payment request)
	RefundsPerApply money.Amount // the total one apply (or one daemon cycle) refunds
	ChargesPerApply money.Amount // the total one apply (or one daemon cycle) charges
	RefundsPerDay   money.Amount // the total refunded per day in settings.timezone, by every run
	ChargesPerDay   money.Amount // the total charged per day in settings.timezone, by every run
}

// IsZero reports whether l limits nothing.
func (l Limits) IsZero() bool { return l == Limits{} }

// limitNames are the attributes of the limits block, in the order they
// are digested and documented.
var limitNames = []string{"refund", "charge", "refunds_per_apply", "charges_per_apply", "refunds_per_day", "charges_per_day"}

// field returns the address of l's field for the attribute name.
func (l *Limits) field(name string) *money.Amount {
	switch name {
	case "refund":
		return &l.Refund
	case "charge":
		return &l.Charge
	case "refunds_per_apply":
		return &l.RefundsPerApply
	case "charges_per_apply":
		return &l.ChargesPerApply
	case "refunds_per_day":
		return &l.RefundsPerDay
	case "charges_per_day":
		return &l.ChargesPerDay
	}
	return nil
}

var settingsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "timezone"},
		{Name: "state"},
		{Name: "reference_prefix"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "limits"}},
}

var limitsSchema = func() *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, n := range limitNames {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: n})
	}
	return s
}()

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
	var limits *hcl.Block
	for _, lb := range content.Blocks {
		if limits != nil {
			l.duplicate(lb, limits, "limits", "The settings block has at most one limits block; merge the two.")
			continue
		}
		limits = lb
	}
	if limits != nil {
		lc, diags := limits.Body.Content(limitsSchema)
		l.diags = append(l.diags, diags...)
		for _, name := range limitNames {
			if attr := lc.Attributes[name]; attr != nil {
				*s.Limits.field(name) = l.amount(sc, attr)
			}
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
