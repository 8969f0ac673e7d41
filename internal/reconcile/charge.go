package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// ActionCharge is a payment of one occurrence of a recurring charge.
const ActionCharge ActionKind = "charge"

// refreshCharges asks DOKU, one status inquiry each, at most Parallelism at
// a time, about the occurrences awaiting their customer, and records what
// became of them, in the state's order: before the refunds are planned,
// so that a refund of an occurrence paid since the last run is planned in
// this one.
func (e *Engine) refreshCharges(ctx context.Context, p *Plan, cfg *spec.Config, unsettled map[string]bool) error {
	rows, err := e.Store.Charges(ctx)
	if err != nil {
		return fmt.Errorf("read charges: %w", err)
	}
	configured := map[string]bool{}
	for _, c := range cfg.Charges {
		configured[c.Address] = true
	}
	var ask []state.Charge
	for _, r := range rows {
		occAddr := spec.OccurrenceAddress(r.Address, r.Occurrence, cfg.Settings.Location)
		if r.Status != state.ChargeAwaitingCustomer || !configured[r.Address] || unsettled[occAddr] || !p.Targets.Match(occAddr) {
			continue
		}
		ask = append(ask, r)
	}
	keys := make([]string, len(ask))
	for i, r := range ask {
		keys[i] = r.PartnerReferenceNo
	}
	asked := e.inquire(ctx, keys)
	for _, r := range ask {
		ans := asked[r.PartnerReferenceNo]
		switch {
		case ans.err != nil:
			continue // asked again next run
		case !ans.found:
			if _, early := e.settling(r.UpdatedAt); early {
				continue // "not yet" perhaps: asked again next run
			}
			// DOKU accepted this request but knows no payment under its
			// key: the same attempt is sent again under the same key,
			// which DOKU refuses if it does have it after all.
			r.Status, r.Message = state.ChargeDeferred, "DOKU has no payment under this key (status inquiry); it is sent again under the same key"
		default:
			if r.Status = chargeStatusOf(ans.st.LatestTransactionStatus); r.Status == state.ChargeAwaitingCustomer {
				continue
			}
			r.ReferenceNo = ans.st.OriginalReferenceNo
		}
		if err := e.Store.PutCharge(ctx, r, e.now()); err != nil {
			return fmt.Errorf("record %s: %w", r.PartnerReferenceNo, err)
		}
	}
	return nil
}

// askPayment asks DOKU for the payment under key. found is false when
// DOKU says it has none: "Transaction Not Found" (404xx01), or status 07.
// Any other failure is err, and says nothing about whether it exists.
func (e *Engine) askPayment(ctx context.Context, key string) (st *doku.StatusResponse, found bool, err error) {
	st, err = e.DOKU.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: key}, doku.RequestOptions{})
	switch {
	case doku.NotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case st.LatestTransactionStatus == doku.TxNotFound:
		return st, false, nil
	}
	return st, true, nil
}

// planCharges decides each occurrence of each charge up to now, after
// refreshCharges (README.md, "How it works"):
//
//   - an occurrence something was sent for is governed by retry alone:
//     paid, awaiting its customer, sent again under the same key when
//     DOKU never got it, or attempt n+1 under a new key after a failure,
//     retry.every later, while attempts are left;
//   - one nothing was sent for is charged when it is due, and when it is
//     missed (spec.Charge.Missed) as catch_up says: all of them, only the
//     latest occurrence, or none.
//
// Before anything is sent, deferred or recorded under a key the state
// cannot vouch for (a lost or restored state), DOKU is asked about every
// key the occurrence could have used, and what it has is adopted
// (verifyOccurrence). Then a balance inquiry, once per binding and only
// for bindings with a charge to make, decides between a charge and a
// deferral.
func (e *Engine) planCharges(ctx context.Context, p *Plan, cfg *spec.Config, now time.Time, unsettled map[string]bool, g *guard) error {
	rows, err := e.Store.Charges(ctx)
	if err != nil {
		return fmt.Errorf("read charges: %w", err)
	}
	// A charge in the state whose block is gone gets no call, not even an
	// inquiry (principle 1, docs/principles.md): it is listed, once, as removed.
	configured := map[string]bool{}
	for _, c := range cfg.Charges {
		configured[c.Address] = true
	}
	removed := map[string]bool{}
	for _, r := range rows {
		if !configured[r.Address] && !removed[r.Address] && p.Targets.Match(r.Address) {
			removed[r.Address] = true
			p.Removed = append(p.Removed, r.Address)
		}
	}
	if len(cfg.Charges) == 0 {
		return nil
	}
	bindings, err := e.Store.Bindings(ctx)
	if err != nil {
		return fmt.Errorf("read bindings: %w", err)
	}
	// The attempts of each occurrence, by number.
	type occKey struct {
		addr string
		at   int64
	}
	attempts := map[occKey]map[int]state.Charge{}
	latest := map[occKey]state.Charge{}
	for _, r := range rows {
		k := occKey{r.Address, r.Occurrence.Unix()}
		if attempts[k] == nil {
			attempts[k] = map[int]state.Charge{}
		}
		attempts[k][r.Attempt] = r
		if old, ok := latest[k]; !ok || r.Attempt > old.Attempt {
			latest[k] = r
		}
	}
	loc, prefix := cfg.Settings.Location, cfg.Settings.ReferencePrefix
	balances := map[string]money.Amount{} // per binding, asked at most once
	balanceErrs := map[string]error{}
	for _, c := range cfg.Charges {
		if unsettled[c.Address] || !p.Targets.Touches(c.Address) || g.blocked[c.Address] {
			continue
		}
		b, ok := bindings[c.Binding]
		if !ok || b.Status != state.BindingActive {
			p.Waiting = append(p.Waiting, Waiting{Address: c.Address, Until: time.Time{}, Reason: c.Binding + " is not active yet"})
			continue
		}
		occs := c.Occurrences(c.Start, now.Add(time.Nanosecond), loc)
		for i, at := range occs {
			occAddr := spec.OccurrenceAddress(c.Address, at, loc)
			if unsettled[occAddr] {
				continue // listed as unresolved: nothing until DOKU says what happened
			}
			if !p.Targets.Match(occAddr) {
				continue
			}
			k := occKey{c.Address, at.Unix()}
			r, known := latest[k]
			attempt, resend := 1, false
			switch {
			case known && r.Status == state.ChargeSucceeded:
				p.Converged++
				continue
			case known && (r.Status == state.ChargeAwaitingCustomer || r.Status == state.ChargePending):
				p.Awaiting = append(p.Awaiting, Awaiting{Address: occAddr, Link: r.WebRedirectURL})
				continue
			case known && r.Status == state.ChargeDeferred:
				// Nothing reached DOKU (refused before processing, not
				// sent, or not found after a crash): the same attempt
				// again, same key.
				attempt, resend = r.Attempt, true
			case known:
				// Failed or expired: another attempt, when allowed.
				if r.Attempt >= c.Retry.Attempts {
					summary := "charge failed, no attempt left"
					if r.Message == deferralMessage {
						summary = "charge deferred (insufficient balance), no attempt left"
					}
					p.Errors = append(p.Errors, Problem{Address: occAddr, Code: r.SNAPCode, Summary: summary,
						Detail: fmt.Sprintf("attempt %d of %d ended %s %s %s", r.Attempt, c.Retry.Attempts, r.Status, r.SNAPCode, r.Message)})
					continue
				}
				if next := r.UpdatedAt.Add(c.Retry.Every); now.Before(next) {
					p.Waiting = append(p.Waiting, Waiting{Address: occAddr, Until: next, Reason: fmt.Sprintf("attempt %d after %s", r.Attempt+1, r.Status)})
					continue
				}
				attempt = r.Attempt + 1
			case i < len(occs)-1 || now.Sub(at) > c.Grace():
				// Nothing was sent for it, and it is missed
				// (spec.Charge.Missed): the next occurrence is due (a
				// later one is in occs), or the grace has passed.
				// catch_up decides.
				if c.CatchUp == spec.CatchUpNone || c.CatchUp == spec.CatchUpLatest && i != len(occs)-1 {
					continue
				}
				if c.CatchUp == spec.CatchUpAll && g.continuity.SchedulesSince.After(at) && c.Jumped(at, loc) {
					// A time the clocks jumped over, before this ddctl
					// scheduled such times (the ddctl of then had no
					// occurrence there): nothing is owed for it.
					continue
				}
			}
			key := IdempotencyKey(prefix, c.Address, occAddr, attempt)
			if resend {
				// The same request again: the key it was sent under,
				// whatever address the entry has now (a moved block).
				key = r.PartnerReferenceNo
			}

			// The state must vouch for the key before anything is sent
			// or recorded under it: it cannot for a key that could have
			// been used before it began keeping its records.
			vouched, err := e.vouches(ctx, g.continuity, key, at)
			if err != nil {
				return err
			}
			if !vouched {
				found, _, err := e.verifyOccurrence(ctx, cfg, c, at, attempts[k])
				if errors.Is(err, errKeyConflict) {
					p.Errors = append(p.Errors, Problem{Address: occAddr, Summary: "one attempt found under two keys", Detail: err.Error() + "."})
					continue
				}
				if err != nil {
					p.Errors = append(p.Errors, Problem{Address: occAddr, Summary: "could not ask DOKU about an occurrence the state cannot vouch for", Transient: true,
						Detail: fmt.Sprintf("%v. The state has no record of what was sent for it since %s (a new or restored state); nothing is sent, deferred or recorded for it until DOKU answers. Run plan again later.",
							err, g.continuity.Since.In(loc).Format(time.RFC3339))})
					continue
				}
				p.Verified = append(p.Verified, occAddr)
				if len(found) > 0 {
					paid := slices.ContainsFunc(found, func(f state.Charge) bool { return f.Status == state.ChargeSucceeded })
					if paid {
						p.Converged++
					} else {
						statuses := make([]string, len(found))
						for i, f := range found {
							statuses[i] = fmt.Sprintf("attempt %d %s", f.Attempt, f.Status)
						}
						p.Waiting = append(p.Waiting, Waiting{Address: occAddr, Reason: fmt.Sprintf("found at DOKU (%s) with no record in the state; adopted, decided by the next plan", strings.Join(statuses, ", "))})
					}
					continue
				}
			}

			if e.NoCustomerSecrets {
				// No customer token to ask the balance with: shown as it
				// would be sent; the plan that is applied asks.
				p.Unchecked = append(p.Unchecked, occAddr)
				p.Actions = append(p.Actions, Action{Kind: ActionCharge, Address: occAddr, Charge: c.Address, Occurrence: at,
					Attempt: attempt, Amount: c.Amount, Reason: c.Description, Binding: c.Binding, Resend: resend, Key: key})
				continue
			}
			bal, ok := balances[c.Binding]
			if !ok && balanceErrs[c.Binding] == nil {
				resp, err := e.DOKU.Balance(ctx, doku.RequestOptions{AuthCode: b.AuthCode})
				if err != nil {
					balanceErrs[c.Binding] = err
				} else {
					bal = balanceOf(resp)
					balances[c.Binding] = bal
				}
			}
			if err := balanceErrs[c.Binding]; err != nil {
				if reason, refused := tokenRefused(err); refused {
					p.Errors = append(p.Errors, Problem{Address: occAddr, Code: reason.code, Summary: "not sent: the payer's binding gives no customer token",
						Detail: fmt.Sprintf("DOKU refused the customer token of %s (%s). Nothing was sent for this charge. If the customer unbound their account, re-bind them (ddctl state rm %s, then apply); it is tried again when the binding changes.",
							c.Binding, reason.text, c.Binding)})
					continue
				}
				p.Errors = append(p.Errors, Problem{Address: occAddr, Summary: "could not ask DOKU for the balance", Transient: true,
					Detail: fmt.Sprintf("%v. Nothing was sent for this charge; run plan again later.", err)})
				continue
			}
			if bal < c.Amount {
				p.Deferred = append(p.Deferred, Problem{Address: occAddr, Summary: "insufficient balance",
					Detail: fmt.Sprintf("the customer's balance is %s; the charge is %s. No payment request is sent; it is retried per retry.", bal, c.Amount)})
				p.Deferrals = append(p.Deferrals, Action{Kind: ActionCharge, Address: occAddr, Charge: c.Address, Occurrence: at,
					Attempt: attempt, Amount: c.Amount, Binding: c.Binding, Key: key})
				continue
			}
			balances[c.Binding] = bal - c.Amount
			var urls spec.Binding
			for _, bb := range cfg.Bindings {
				if bb.Address == c.Binding {
					urls = bb
				}
			}
			p.Actions = append(p.Actions, Action{Kind: ActionCharge, Address: occAddr, Charge: c.Address, Occurrence: at,
				Attempt: attempt, Amount: c.Amount, Reason: c.Description, Binding: c.Binding,
				SuccessURL: urls.SuccessURL, FailedURL: urls.FailedURL, Resend: resend, Key: key})
		}
	}
	return nil
}

// deferralMessage marks an attempt RecordDeferrals spent.
const deferralMessage = "deferred: insufficient balance; no payment request was sent"

// recordDeferrals records each charge the plan deferred for want of
// balance as an attempt spent with no request sent, so that retry decides
// when it is tried again (after retry.every) and how often (retry.attempts).
// Apply calls it; a plan alone spends no attempt. The plan verified each
// deferral's key at DOKU first where the state could not vouch for it, so
// "no payment request was sent" is the state's knowledge, not a guess.
func (e *Engine) recordDeferrals(ctx context.Context, p *Plan) error {
	for _, a := range p.Deferrals {
		row := state.Charge{Address: a.Charge, Occurrence: a.Occurrence, Attempt: a.Attempt, PartnerReferenceNo: a.Key,
			Amount: a.Amount, BindingAddress: a.Binding, Status: state.ChargeFailed,
			Message: deferralMessage}
		if err := e.Store.PutCharge(ctx, row, e.now()); err != nil {
			return fmt.Errorf("record the deferral of %s: %w", a.Address, err)
		}
	}
	return nil
}

// verifyOccurrence asks DOKU about every key the occurrence at of charge c
// could have used, attempts 1 to retry.attempts under its address and
// under every address a moved block brought it from, but those the state
// vouches for. What DOKU has that the state did not know (an attempt it
// has no row of, or whose status differs) is adopted as the attempt's
// row; the other keys are recorded as verified, so that they are not asked
// about again. have are the state's attempts of the occurrence. It returns
// the rows adopted, and how many keys it asked about; an error when it
// found nothing and DOKU could not be asked about a key (what the other
// keys told is kept, so the next plan asks only about the rest).
func (e *Engine) verifyOccurrence(ctx context.Context, cfg *spec.Config, c spec.Charge, at time.Time, have map[int]state.Charge) (found []state.Charge, asked int, err error) {
	cont, err := e.Store.Continuity(ctx)
	if err != nil {
		return nil, 0, err
	}
	loc, prefix := cfg.Settings.Location, cfg.Settings.ReferencePrefix
	occAddr := spec.OccurrenceAddress(c.Address, at, loc)
	addrs := append([]string{c.Address}, cfg.FormerAddresses(c.Address)...)
	// Every attempt the occurrence could have had, whatever retry says
	// now: retry.attempts may have been higher when it was charged.
	attempts := spec.MaxRetryAttempts
	for n := range have {
		attempts = max(attempts, n)
	}
	// The keys the state cannot vouch for are asked about first, at most
	// Parallelism at a time (up to ten per occurrence); what the answers
	// mean is then recorded in the keys' order.
	type toAsk struct {
		n   int
		key string
	}
	var ask []toAsk
	for n := 1; n <= attempts; n++ {
		for _, a := range addrs {
			key := IdempotencyKey(prefix, a, spec.OccurrenceAddress(a, at, loc), n)
			if seen, ok, err := e.Store.KeySeen(ctx, key); err != nil {
				return nil, asked, err
			} else if ok && !seen.Before(cont.Since) {
				continue
			}
			ask = append(ask, toAsk{n, key})
		}
	}
	keys := make([]string, len(ask))
	for i, k := range ask {
		keys[i] = k.key
	}
	answers := e.inquire(ctx, keys)
	asked = len(answers)
	var missing []string
	var askErr error // the first key DOKU could not be asked about
	for _, k := range ask {
		n, key := k.n, k.key
		ans := answers[key]
		st, ok, err := ans.st, ans.found, ans.err
		if err != nil {
			// What the other keys tell is still kept: the next plan
			// asks only about this one.
			if askErr == nil {
				askErr = fmt.Errorf("status of %s attempt %d (%s): %w", occAddr, n, key, err)
			}
			continue
		}
		if !ok {
			missing = append(missing, key)
			continue
		}
		row, had := have[n]
		if had && row.PartnerReferenceNo != key {
			return nil, asked, fmt.Errorf("%w: DOKU has a payment (status %s) under %s, the key %s attempt %d had before a moved block renamed it, and the state has that attempt under %s; both may have been charged. Look at both in DOKU's back office, refund what is extra, and forget the state's entry with ddctl state rm %s if it is wrong",
				errKeyConflict, st.LatestTransactionStatus, key, occAddr, n, row.PartnerReferenceNo, c.Address)
		}
		status := chargeStatusOf(st.LatestTransactionStatus)
		if had && row.Status == status {
			// DOKU says what the state says: nothing new. The key is
			// vouched for from now on.
			missing = append(missing, key)
			continue
		}
		if !had {
			row = state.Charge{Address: c.Address, Occurrence: at, Attempt: n, PartnerReferenceNo: key, Amount: c.Amount, BindingAddress: c.Binding}
		}
		row.ReferenceNo, row.Status = st.OriginalReferenceNo, status
		row.Message = "adopted: found by status inquiry"
		if err := e.Store.PutCharge(ctx, row, e.now()); err != nil {
			return nil, asked, fmt.Errorf("record %s: %w", key, err)
		}
		found = append(found, row)
	}
	if len(missing) > 0 {
		if err := e.Store.RecordVerified(ctx, occAddr, missing, e.now()); err != nil {
			return nil, asked, err
		}
	}
	if len(found) == 0 && askErr != nil {
		// Nothing found yet, and a key not answered: nothing may be sent,
		// deferred or recorded for the occurrence.
		return nil, asked, askErr
	}
	return found, asked, nil
}

// errKeyConflict is verifyOccurrence finding one attempt of an occurrence
// under two keys (before and after a rename): an operator must look.
var errKeyConflict = errors.New("one attempt under two keys")

// vouches reports whether the state can say what was sent under key, a
// key that could first be used at first: it was created or restored
// before then, or it journalled the key, or DOKU was asked about it,
// since then.
func (e *Engine) vouches(ctx context.Context, cont state.Continuity, key string, first time.Time) (bool, error) {
	if !first.Before(cont.Since) {
		return true, nil
	}
	seen, ok, err := e.Store.KeySeen(ctx, key)
	if err != nil {
		return false, err
	}
	return ok && !seen.Before(cont.Since), nil
}

// chargeStatusOf is what a payment's latestTransactionStatus means for its
// occurrence. Declined and not confirmed in time are both failed at DOKU,
// and both are retried per retry.
func chargeStatusOf(tx string) state.ChargeStatus {
	switch tx {
	case doku.TxSuccess, doku.TxRefunded:
		return state.ChargeSucceeded
	case doku.TxFailed, doku.TxCanceled:
		return state.ChargeFailed
	}
	return state.ChargeAwaitingCustomer
}

func balanceOf(r *doku.BalanceResponse) money.Amount {
	for _, ai := range r.AccountInfos {
		if ai.BalanceType == "" || ai.BalanceType == "BALANCE" {
			if a, err := ai.Amount.Money(); err == nil {
				return a
			}
		}
	}
	return 0
}

// applyCharge asks DOKU to debit one occurrence. Success means the
// customer is asked to confirm; the result comes by status inquiry (or
// notification) in a later run.
func (e *Engine) applyCharge(ctx context.Context, a Action, runID int64) ActionResult {
	out := ActionResult{Action: a}
	bindings, err := e.Store.Bindings(ctx)
	if err != nil {
		out.Status, out.Message = ResultSkipped, err.Error()
		return out
	}
	b, ok := bindings[a.Binding]
	if !ok || b.Status != state.BindingActive {
		out.Status, out.Message = ResultSkipped, a.Binding+" is not active"
		return out
	}
	remarks := a.Reason
	if remarks == "" {
		remarks = "Recurring charge"
	}
	name := remarks
	if utf8.RuneCountInString(name) > 32 {
		name = string([]rune(name)[:32])
	}
	req := doku.PaymentRequest{
		PartnerReferenceNo: a.Key,
		Amount:             doku.NewAmount(a.Amount),
		PayOptionDetails:   []doku.PayOption{{PayMethod: "BALANCE", TransAmount: doku.NewAmount(a.Amount), FeeAmount: doku.NewAmount(0)}},
		AdditionalInfo: doku.PaymentInfo{Channel: doku.Channel, Remarks: remarks,
			SuccessPaymentURL: a.SuccessURL, FailedPaymentURL: a.FailedURL,
			LineItems: []doku.LineItem{{Name: name, Price: a.Amount.Value(), Quantity: json.RawMessage(`"1"`)}}},
	}
	extID := doku.NewExternalID(e.now())
	if a.Resend {
		if req, extID, err = resendOf(ctx, e, a, state.KindCharge, req); err != nil {
			out.Status, out.Message = ResultSkipped, err.Error()
			return out
		}
	}
	body, err := doku.Marshal(req)
	if err != nil {
		out.Status, out.Message = ResultSkipped, fmt.Sprintf("encode request: %v", err)
		return out
	}
	row := state.Charge{Address: a.Charge, Occurrence: a.Occurrence, Attempt: a.Attempt, PartnerReferenceNo: a.Key,
		Amount: a.Amount, BindingAddress: a.Binding, Status: state.ChargePending}
	// The intent: the journal first, then the charge's row, so that a
	// crash between the two leaves an open operation for the resolver
	// (a pending row with no operation would wait for ever).
	e.crash(CrashBeforeIntent, a)
	opID, err := e.Store.RecordIntent(ctx, state.Operation{RunID: runID, Address: a.Address, Kind: state.KindCharge,
		IdempotencyKey: a.Key, ExternalID: extID, Request: body, Amount: a.Amount}, e.now())
	if err != nil {
		out.Status, out.Message = ResultSkipped, err.Error()
		return out
	}
	e.crash(CrashMidIntent, a)
	if err := e.Store.PutCharge(ctx, row, e.now()); err != nil {
		// The intent is journalled; the resolver settles it by inquiry.
		out.Status, out.Message = ResultSkipped, err.Error()
		return out
	}
	e.crash(CrashAfterIntent, a)
	resp, err := e.DOKU.Pay(e.sendContext(context.WithoutCancel(ctx), a, extID), req, doku.RequestOptions{ExternalID: extID, AuthCode: b.AuthCode})
	e.crash(CrashAfterResponse, a)
	o, st := outcome(err)
	switch {
	case notSent(err):
		// A token the request needed was refused or could not be had: no
		// payment request left, the attempt is not spent.
		o.Status, st, o.Message = state.OpNotReceived, ResultSkipped, notSentMessage(err, a.Binding)
	case a.Resend && st == ResultFailed:
		// A refusal of a resend ("paid bill", "duplicate") may be DOKU
		// answering our own earlier request: ask before concluding, as
		// for a refund.
		o.Status, st = state.OpUnknown, ResultUnknown
	}
	out.Status = st
	switch {
	case err == nil:
		o.HTTPStatus, o.SNAPCode, o.Message = 200, string(resp.ResponseCode), resp.ResponseMessage
		row.Status, row.ReferenceNo, row.WebRedirectURL = state.ChargeAwaitingCustomer, resp.ReferenceNo, resp.WebRedirectURL
		out.Link = resp.WebRedirectURL
	case o.Status == state.OpFailed:
		row.Status = state.ChargeFailed
	case o.Status == state.OpNotReceived:
		row.Status = state.ChargeDeferred
	}
	row.SNAPCode, row.Message = o.SNAPCode, o.Message
	// The outcome: the charge's row first, then the journal, so that a
	// crash between the two leaves the operation open for the resolver.
	e.crash(CrashBeforeOutcome, a)
	if o.Status != state.OpUnknown {
		if perr := e.Store.PutCharge(context.WithoutCancel(ctx), row, e.now()); perr != nil {
			o.Status, out.Status = state.OpUnknown, ResultUnknown
		}
	}
	return e.closeJournal(ctx, a, opID, o, err, out)
}

// resolveCharge settles a charge request left open by asking for the
// payment under its key.
func (e *Engine) resolveCharge(ctx context.Context, op state.Operation, asked inquiries) Resolution {
	res := Resolution{Address: op.Address, Key: op.IdempotencyKey, Status: op.Status}
	rows, err := e.Store.Charges(ctx)
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	var row *state.Charge
	for i := range rows {
		if rows[i].PartnerReferenceNo == op.IdempotencyKey {
			row = &rows[i]
		}
	}
	ans := asked.get(ctx, e, op.IdempotencyKey)
	st, found, err := ans.st, ans.found, ans.err
	var cs state.ChargeStatus
	until, early := e.settling(op.CreatedAt)
	switch {
	case err == nil && !found && early:
		res.Detail = settlingDetail(ans.at, until, "DOKU has no payment under this key")
		return res
	case err == nil && !found:
		res.Status, res.Detail, cs = state.OpNotReceived, "DOKU has no payment under this key; it will be sent again", state.ChargeDeferred
	case err != nil:
		res.Detail = fmt.Sprintf("could not ask DOKU: %v; it will be asked again next run", err)
		return res
	default:
		res.Status, cs = state.OpSucceeded, chargeStatusOf(st.LatestTransactionStatus)
		res.Detail = map[state.ChargeStatus]string{
			state.ChargeSucceeded:        "DOKU made the payment (found by status inquiry)",
			state.ChargeFailed:           "DOKU lists the payment as failed",
			state.ChargeAwaitingCustomer: "DOKU has the payment; it waits for the customer",
		}[cs]
	}
	if row != nil {
		row.Status = cs
		if st != nil && st.OriginalReferenceNo != "" {
			row.ReferenceNo = st.OriginalReferenceNo
		}
		if err := e.Store.PutCharge(context.WithoutCancel(ctx), *row, e.now()); err != nil {
			res.Status, res.Detail = op.Status, "record charge: "+err.Error()
			return res
		}
	}
	if err := e.Store.RecordOutcome(context.WithoutCancel(ctx), op.ID, state.Outcome{Status: res.Status, Message: res.Detail}, e.now()); err != nil {
		res.Status, res.Detail = op.Status, "record outcome: "+err.Error()
	}
	return res
}
