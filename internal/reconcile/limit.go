package reconcile

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/spec"
)

// LimitBreach is a limit of settings.limits that a plan's actions break.
type LimitBreach struct {
	// Limit is the attribute, as written: settings.limits.refunds_per_apply.
	Limit string       `json:"limit"`
	Max   money.Amount `json:"max"`
	// Total is what the plan would move against the limit: the largest
	// single amount, or the sum (with what was moved earlier that day, for
	// a per-day limit).
	Total money.Amount `json:"total"`
	// Before is what runs moved earlier the same day (per-day limits).
	Before money.Amount `json:"before,omitempty"`
	// Instances are the actions that count towards the total, or, for a
	// single-amount limit, those over it.
	Instances []string `json:"instances"`
}

// Error is the breach said for a person: what, how much, which, and what
// to do.
func (b LimitBreach) Error() string {
	earlier := ""
	if b.Before > 0 {
		earlier = fmt.Sprintf(" (%s moved earlier today)", b.Before)
	}
	shown := b.Instances
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(b.Instances)-5))
	}
	if !strings.Contains(b.Limit, "_per_") {
		return fmt.Sprintf("%s is %s; %s over it, the largest %s: %s", b.Limit, b.Max, plural(len(b.Instances), "action is", "actions are"), b.Total, strings.Join(shown, ", "))
	}
	return fmt.Sprintf("%s is %s; this plan comes to %s%s: %s", b.Limit, b.Max, b.Total, earlier, strings.Join(shown, ", "))
}

// Blocked reports whether apply must send nothing of the plan: it breaks
// a limit and no reason to go over was given (Plan.Override).
func (p *Plan) Blocked() bool { return len(p.OverLimit) > 0 && p.Override == "" }

// checkLimits compares the plan's actions with cfg's settings.limits and
// records each limit they break (principle 8, docs/principles.md). Per-day totals
// count what the journal says every run asked to move since midnight of
// now's day in settings.timezone.
func (e *Engine) checkLimits(ctx context.Context, p *Plan, cfg *spec.Config, now time.Time) error {
	lim := cfg.Settings.Limits
	if lim.IsZero() || len(p.Actions) == 0 {
		return nil
	}
	type kind struct {
		kind                  ActionKind
		single, apply, perDay money.Amount
		name                  string // the attribute stem: refund, charge
	}
	kinds := []kind{
		{ActionRefund, lim.Refund, lim.RefundsPerApply, lim.RefundsPerDay, "refund"},
		{ActionCharge, lim.Charge, lim.ChargesPerApply, lim.ChargesPerDay, "charge"},
	}
	var spentRefunds, spentCharges money.Amount
	if lim.RefundsPerDay > 0 || lim.ChargesPerDay > 0 {
		n := now.In(cfg.Settings.Location)
		midnight := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, cfg.Settings.Location)
		var err error
		if spentRefunds, spentCharges, err = e.Store.Spent(ctx, midnight); err != nil {
			return fmt.Errorf("read what was moved today: %w", err)
		}
	}
	for _, k := range kinds {
		var total, largest money.Amount
		var all, over []string
		for _, a := range p.Actions {
			if a.Kind != k.kind {
				continue
			}
			total += a.Amount
			all = append(all, a.Address)
			if k.single > 0 && a.Amount > k.single {
				over = append(over, a.Address)
				largest = max(largest, a.Amount)
			}
		}
		if len(over) > 0 {
			p.OverLimit = append(p.OverLimit, LimitBreach{Limit: "settings.limits." + k.name, Max: k.single, Total: largest, Instances: over})
		}
		if k.apply > 0 && total > k.apply {
			p.OverLimit = append(p.OverLimit, LimitBreach{Limit: "settings.limits." + k.name + "s_per_apply", Max: k.apply, Total: total, Instances: all})
		}
		before := spentRefunds
		if k.kind == ActionCharge {
			before = spentCharges
		}
		if k.perDay > 0 && before+total > k.perDay {
			p.OverLimit = append(p.OverLimit, LimitBreach{Limit: "settings.limits." + k.name + "s_per_day", Max: k.perDay, Total: before + total, Before: before, Instances: all})
		}
	}
	return nil
}
