package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// guard is what one plan knows before it decides anything, to keep a
// money move's identity: since when the state vouches for keys it has no
// record of, and the instances that must not be planned because they look
// like a block renamed without a moved block.
type guard struct {
	continuity state.Continuity
	blocked    map[string]bool
}

// renames finds the instances that look like an entry of the state whose
// block was renamed without a moved block: a new instance (no entry in the
// state) whose money is an entry's that is no longer in the configuration:
// the same binding, amount and occurrence for a charge; the same payment
// (and amount) for a refund; the same customer for a binding. Sending it
// would move the same money again under a new key. Each is a plan error
// naming both addresses and the moved block to write, and is not planned:
// nothing is sent for it.
//
// It reads the state's rows only when the configuration has a new instance
// and the state an entry no longer in the configuration, of one kind: a
// converged plan pays for the addresses alone. refunds are the state's.
func (e *Engine) renames(ctx context.Context, p *Plan, cfg *spec.Config, g *guard, refunds map[string]state.Refund) error {
	desired := map[string]bool{}
	for _, a := range cfg.Addresses() {
		desired[a] = true
	}
	chargeAddrs, bindingAddrs, err := e.Store.EntryAddresses(ctx)
	if err != nil {
		return fmt.Errorf("read the state's addresses: %w", err)
	}
	// newAndRemoved reports whether, of one kind, some configured instance
	// has no entry and some entry is not configured.
	newAndRemoved := func(configured []string, have []string) bool {
		in := map[string]bool{}
		removed := false
		for _, a := range have {
			in[a] = true
			removed = removed || !desired[a]
		}
		if !removed {
			return false
		}
		for _, a := range configured {
			if !in[a] {
				return true
			}
		}
		return false
	}
	var cfgCharges, cfgBindings, cfgRefunds, haveRefunds []string
	for _, c := range cfg.Charges {
		cfgCharges = append(cfgCharges, c.Address)
	}
	for _, b := range cfg.Bindings {
		cfgBindings = append(cfgBindings, b.Address)
	}
	for _, r := range cfg.Refunds {
		cfgRefunds = append(cfgRefunds, r.Address)
	}
	for a := range refunds {
		haveRefunds = append(haveRefunds, a)
	}
	var charges []state.Charge
	if newAndRemoved(cfgCharges, chargeAddrs) || newAndRemoved(cfgRefunds, haveRefunds) {
		// Charges: for themselves, and for the payments of the refunds of
		// charge occurrences.
		if charges, err = e.Store.Charges(ctx); err != nil {
			return fmt.Errorf("read charges: %w", err)
		}
	}
	var bindings map[string]state.Binding
	if newAndRemoved(cfgBindings, bindingAddrs) {
		if bindings, err = e.Store.Bindings(ctx); err != nil {
			return fmt.Errorf("read bindings: %w", err)
		}
	}
	block := func(addr, old, what string) {
		g.blocked[addr] = true
		from, to := old, addr
		if i := strings.Index(from, "#"); i >= 0 {
			from = from[:i]
		}
		p.Errors = append(p.Errors, Problem{Address: addr, Summary: "looks like " + from + " renamed",
			Detail: fmt.Sprintf("%s is new to the state, and %s, which is no longer in the configuration, %s. Sending it would move that money again under a new key, so nothing was sent for %s. "+
				"If it is the same, renamed, add to the configuration:\n  moved {\n    from = %s\n    to   = %s\n  }\n"+
				"If it is not, forget the old entry first: ddctl state rm %s (no call is made).", to, old, what, to, from, to, from)})
	}

	// Charges: a new charge whose binding and amount match a removed
	// charge's attempt at one of its own occurrences.
	known := map[string]bool{}
	for _, c := range charges {
		known[c.Address] = true
	}
	for _, c := range cfg.Charges {
		if known[c.Address] {
			continue
		}
		for _, r := range charges {
			// The amount is not compared: a charge renamed and repriced
			// is still the same occurrence charged again.
			if desired[r.Address] || r.BindingAddress != c.Binding {
				continue
			}
			if occ := c.Occurrences(r.Occurrence, r.Occurrence.Add(1), cfg.Settings.Location); len(occ) == 1 && occ[0].Equal(r.Occurrence) {
				block(c.Address, spec.OccurrenceAddress(r.Address, r.Occurrence, cfg.Settings.Location),
					fmt.Sprintf("holds attempt %d (%s) of the same occurrence: %s charged to %s", r.Attempt, r.Status, r.Amount, r.BindingAddress))
				break
			}
		}
	}

	// Refunds: a new refund of a payment a removed refund refunds, for the
	// same amount (or the full one).
	paid := paidOccurrences(charges)
	for _, want := range cfg.Refunds {
		if _, ok := refunds[want.Address]; ok {
			continue
		}
		payment := want.Payment
		if want.Charge != "" {
			c, ok := paid[occurrenceKey{want.Charge, want.Occurrence.UnixNano()}]
			if !ok {
				continue
			}
			payment = c.PartnerReferenceNo
		}
		for addr, r := range refunds {
			if desired[addr] || r.Payment != payment {
				continue
			}
			block(want.Address, addr, fmt.Sprintf("is a refund (%s) of %s of the same payment %q (this block asks for %s)", r.Status, r.Amount, payment, amountText(want.Amount)))
			break
		}
	}

	// Bindings: a new binding of a customer a removed binding binds.
	for _, want := range cfg.Bindings {
		if _, ok := bindings[want.Address]; ok {
			continue
		}
		for addr, b := range bindings {
			if !desired[addr] && b.CustomerID == want.CustomerID && b.Status != state.BindingUnbound {
				block(want.Address, addr, fmt.Sprintf("is a %s binding of the same customer %q", b.Status, b.CustomerID))
				break
			}
		}
	}
	return nil
}

// notSentPrefix starts the message recorded for a request that never left
// because a token DOKU must issue first was refused.
const notSentPrefix = "not sent: "

// refusal is why DOKU refused to issue a token.
type refusal struct{ code, text string }

// tokenRefused reports whether err is DOKU refusing a binding's customer
// token (403 or 404 on the B2B2C exchange): the payer's binding gives no
// token, so no request in the payer's name can be made. It is not a
// refusal of the money request, which never left.
func tokenRefused(err error) (refusal, bool) {
	var derr *doku.Error
	if !errors.As(err, &derr) || derr.Op != doku.OpTokenB2B2C {
		return refusal{}, false
	}
	switch derr.Code.HTTPStatus() {
	case 403, 404:
		return refusal{code: string(derr.Code), text: strings.TrimSpace(string(derr.Code) + " " + derr.Message)}, true
	}
	return refusal{}, false
}

// refusedTokenCode reports whether code, recorded for a request that was
// not sent, is DOKU refusing the payer's customer token (tokenRefused; the
// UNCONFIRMED reading of doku.BindingGone, here with 404 as well): the
// request waits for the binding to change. Anything else (the access
// token could not be had for now) is sent again by the next run.
func refusedTokenCode(code string) bool {
	c := doku.Code(code)
	return c.Service() == doku.ServiceTokenB2B2C && (c.HTTPStatus() == 403 || c.HTTPStatus() == 404)
}

// notSent reports whether err failed a request before it left: the access
// token or the customer token it needed was refused or could not be had.
// Whatever DOKU answered, it answered about the token, not the request.
func notSent(err error) bool {
	var derr *doku.Error
	return errors.As(err, &derr) && (derr.Op == doku.OpTokenB2B || derr.Op == doku.OpTokenB2B2C)
}

// notSentMessage is what is recorded for a request err stopped before it
// left, and what to do about it.
func notSentMessage(err error, binding string) string {
	if r, ok := tokenRefused(err); ok {
		return fmt.Sprintf("%sDOKU refused the customer token of %s (%s): the payer's binding is no longer active at DOKU. Re-bind the customer, or refund outside ddctl; it is tried again when the binding changes",
			notSentPrefix, binding, r.text)
	}
	return fmt.Sprintf("%sno token to send it with: %v; it is sent again by the next run", notSentPrefix, err)
}

// planAmounts sums what a plan's actions move, by kind.
func planAmounts(p *Plan) (refunds, charges money.Amount) {
	for _, a := range p.Actions {
		switch a.Kind {
		case ActionRefund:
			refunds += a.Amount
		case ActionCharge:
			charges += a.Amount
		}
	}
	return refunds, charges
}

// verifyRefunded asks DOKU about the charge occurrences that refunds of
// the configuration refund, that the state has no paid attempt of, and
// that are older than its records (a lost or restored state): a charge
// skipped as missed is never verified by planCharges, and its refund
// would wait for ever for a payment made before the state knew. Refunds
// the state has made are left alone.
func (e *Engine) verifyRefunded(ctx context.Context, p *Plan, cfg *spec.Config, g *guard, refunds map[string]state.Refund, unsettled map[string]bool) error {
	var wants []spec.Refund
	for _, r := range cfg.Refunds {
		if _, made := refunds[r.Address]; !made && r.Charge != "" && r.Occurrence.Before(g.continuity.Since) &&
			!g.blocked[r.Address] && !unsettled[r.Address] && p.Targets.Match(r.Address) {
			wants = append(wants, r)
		}
	}
	if len(wants) == 0 {
		return nil
	}
	rows, err := e.Store.Charges(ctx)
	if err != nil {
		return fmt.Errorf("read charges: %w", err)
	}
	paid := paidOccurrences(rows)
	charges := map[string]spec.Charge{}
	for _, c := range cfg.Charges {
		charges[c.Address] = c
	}
	for _, r := range wants {
		c, ok := charges[r.Charge]
		if _, done := paid[occurrenceKey{r.Charge, r.Occurrence.UnixNano()}]; done || !ok {
			continue
		}
		have := map[int]state.Charge{}
		for _, row := range rows {
			if row.Address == r.Charge && row.Occurrence.Equal(r.Occurrence) {
				have[row.Attempt] = row
			}
		}
		_, asked, err := e.verifyOccurrence(ctx, cfg, c, r.Occurrence, have)
		if err != nil {
			p.Errors = append(p.Errors, Problem{Address: r.Address, Summary: "could not ask DOKU about the occurrence this refund refunds", Transient: true,
				Detail: fmt.Sprintf("%v. The state has no record of it before %s (a new or restored state); nothing is sent for this refund until DOKU answers. Run plan again later.",
					err, g.continuity.Since.In(cfg.Settings.Location).Format(time.RFC3339))})
			g.blocked[r.Address] = true
			continue
		}
		if asked > 0 {
			p.Verified = append(p.Verified, spec.OccurrenceAddress(r.Charge, r.Occurrence, cfg.Settings.Location))
		}
	}
	return nil
}
