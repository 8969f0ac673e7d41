package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// MissedAfter is how long after its time an occurrence with nothing sent
// counts as missed, for catch_up: a run later than that (a stopped daemon,
// a late CI job) charges missed occurrences only as catch_up says.
const MissedAfter = time.Hour

// ActionCharge is a payment of one occurrence of a recurring charge.
const ActionCharge ActionKind = "charge"

// refreshCharges asks DOKU, one status inquiry each, about the occurrences
// awaiting their customer, and records what became of them: before the
// refunds are planned, so that a refund of an occurrence paid since the
// last run is planned in this one.
func (e *Engine) refreshCharges(ctx context.Context, p *Plan, cfg *spec.Config, unsettled map[string]bool) error {
	rows, err := e.Store.Charges(ctx)
	if err != nil {
		return fmt.Errorf("read charges: %w", err)
	}
	configured := map[string]bool{}
	for _, c := range cfg.Charges {
		configured[c.Address] = true
	}
	for _, r := range rows {
		occAddr := spec.OccurrenceAddress(r.Address, r.Occurrence, cfg.Settings.Location)
		if r.Status != state.ChargeAwaitingCustomer || !configured[r.Address] || unsettled[occAddr] || !p.Targets.Match(occAddr) {
			continue
		}
		st, err := e.DOKU.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: r.PartnerReferenceNo}, doku.RequestOptions{})
		if err != nil {
			continue // asked again next run
		}
		if r.Status = chargeStatusOf(st.LatestTransactionStatus); r.Status == state.ChargeAwaitingCustomer {
			continue
		}
		r.ReferenceNo = st.OriginalReferenceNo
		if err := e.Store.PutCharge(ctx, r, e.now()); err != nil {
			return fmt.Errorf("record %s: %w", r.PartnerReferenceNo, err)
		}
	}
	return nil
}

// planCharges decides each occurrence that is due, after refreshCharges
// (DESIGN.md, "How plan decides"): a balance inquiry, once per binding,
// only for bindings with a charge to make; a charge when the balance covers
// it, deferred otherwise; attempt n+1 with a new key after a failure, per
// retry.
func (e *Engine) planCharges(ctx context.Context, p *Plan, cfg *spec.Config, now time.Time, unsettled map[string]bool) error {
	rows, err := e.Store.Charges(ctx)
	if err != nil {
		return fmt.Errorf("read charges: %w", err)
	}
	// A charge in the state whose block is gone gets no call, not even an
	// inquiry (DESIGN.md principle 1): it is listed, once, as removed.
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
	// The latest attempt of each occurrence.
	type occKey struct {
		addr string
		at   int64
	}
	latest := map[occKey]state.Charge{}
	history := map[string]bool{} // charges with any row in the state
	for _, r := range rows {
		history[r.Address] = true
		k := occKey{r.Address, r.Occurrence.Unix()}
		if old, ok := latest[k]; !ok || r.Attempt > old.Attempt {
			latest[k] = r
		}
	}
	balances := map[string]money.Amount{} // per binding, asked at most once
	for _, c := range cfg.Charges {
		if unsettled[c.Address] || !p.Targets.Touches(c.Address) {
			continue
		}
		b, ok := bindings[c.Binding]
		if !ok || b.Status != state.BindingActive {
			p.Waiting = append(p.Waiting, Waiting{Address: c.Address, Until: time.Time{}, Reason: c.Binding + " is not active yet"})
			continue
		}
		occs := dueOccurrences(c, now, cfg.Settings.Location)
		for _, at := range occs {
			occAddr := spec.OccurrenceAddress(c.Address, at, cfg.Settings.Location)
			if unsettled[occAddr] {
				continue // listed as unresolved: nothing until DOKU says what happened
			}
			if !p.Targets.Match(occAddr) {
				continue
			}
			r, known := latest[occKey{c.Address, at.Unix()}]
			attempt, resend := 1, false
			switch {
			case known && r.Status == state.ChargeSucceeded:
				p.Converged++
				continue
			case known && (r.Status == state.ChargeAwaitingCustomer || r.Status == state.ChargePending):
				p.Awaiting = append(p.Awaiting, Awaiting{Address: occAddr, Link: r.WebRedirectURL})
				continue
			case known && r.Status == state.ChargeDeferred:
				// Nothing reached DOKU (refused before processing, or not
				// found after a crash): the same attempt again, same key.
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
			}
			bal, ok := balances[c.Binding]
			if !ok {
				resp, err := e.DOKU.Balance(ctx, doku.RequestOptions{AuthCode: b.AuthCode})
				if err != nil {
					p.Errors = append(p.Errors, Problem{Address: occAddr, Summary: "could not ask DOKU for the balance", Transient: true,
						Detail: fmt.Sprintf("%v. Nothing was sent for this charge; run plan again later.", err)})
					continue
				}
				bal = balanceOf(resp)
				balances[c.Binding] = bal
			}
			if bal < c.Amount {
				p.Deferred = append(p.Deferred, Problem{Address: occAddr, Summary: "insufficient balance",
					Detail: fmt.Sprintf("the customer's balance is %s; the charge is %s. No payment request is sent; it is retried per retry.", bal, c.Amount)})
				p.Deferrals = append(p.Deferrals, Action{Kind: ActionCharge, Address: occAddr, Charge: c.Address, Occurrence: at,
					Attempt: attempt, Amount: c.Amount, Binding: c.Binding,
					Key: IdempotencyKey(cfg.Settings.ReferencePrefix, c.Address, occAddr, attempt)})
				continue
			}
			if !known && !history[c.Address] && now.Sub(at) > MissedAfter {
				// A past occurrence of a charge the state has no record of
				// at all: a lost state may have forgotten its payment. Ask
				// DOKU under its first key before charging (principle 2's
				// second guard; a restored state is caught by DOKU's
				// refusal of a used key, which is then asked about). What
				// is found is recorded, and decided by the next plan.
				found, ok, err := e.adoptCharge(ctx, c, at, IdempotencyKey(cfg.Settings.ReferencePrefix, c.Address, occAddr, 1))
				if err != nil {
					p.Errors = append(p.Errors, Problem{Address: occAddr, Summary: "could not ask DOKU about a missed occurrence", Transient: true,
						Detail: fmt.Sprintf("%v. Nothing was sent for this charge; run plan again later.", err)})
					continue
				}
				if ok {
					if found.Status == state.ChargeSucceeded {
						p.Converged++
					} else {
						p.Waiting = append(p.Waiting, Waiting{Address: occAddr, Reason: fmt.Sprintf("found at DOKU (%s) with no record in the state; adopted, decided by the next plan", found.Status)})
					}
					continue
				}
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
				SuccessURL: urls.SuccessURL, FailedURL: urls.FailedURL, Resend: resend,
				Key: IdempotencyKey(cfg.Settings.ReferencePrefix, c.Address, occAddr, attempt)})
		}
	}
	return nil
}

// dueOccurrences are a charge's occurrences up to now, less the missed ones
// catch_up leaves out.
func dueOccurrences(c spec.Charge, now time.Time, loc *time.Location) []time.Time {
	all := c.Occurrences(c.Start, now.Add(time.Nanosecond), loc)
	var current, missed []time.Time
	for _, t := range all {
		if now.Sub(t) > MissedAfter {
			missed = append(missed, t)
		} else {
			current = append(current, t)
		}
	}
	switch c.CatchUp {
	case spec.CatchUpAll:
		return all
	case spec.CatchUpNone:
		return current
	}
	if len(missed) > 0 && len(current) == 0 {
		return missed[len(missed)-1:]
	}
	return current
}

// deferralMessage marks an attempt RecordDeferrals spent.
const deferralMessage = "deferred: insufficient balance; no payment request was sent"

// RecordDeferrals records each charge the plan deferred for want of
// balance as an attempt spent with no request sent, so that retry decides
// when it is tried again (after retry.every) and how often (retry.attempts).
// Apply calls it; a plan alone spends no attempt.
func (e *Engine) RecordDeferrals(ctx context.Context, p *Plan) error {
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

// adoptCharge asks DOKU for the payment under key, an occurrence's first
// key, and records what it finds; ok is false when DOKU has no such
// payment.
func (e *Engine) adoptCharge(ctx context.Context, c spec.Charge, at time.Time, key string) (row state.Charge, ok bool, err error) {
	st, err := e.DOKU.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: key}, doku.RequestOptions{})
	var derr *doku.Error
	if errors.As(err, &derr) && derr.Code.HTTPStatus() == 404 {
		return state.Charge{}, false, nil
	}
	if err != nil {
		return state.Charge{}, false, err
	}
	row = state.Charge{Address: c.Address, Occurrence: at, Attempt: 1, PartnerReferenceNo: key, Amount: c.Amount,
		BindingAddress: c.Binding, ReferenceNo: st.OriginalReferenceNo, Message: "adopted: found by status inquiry"}
	row.Status = chargeStatusOf(st.LatestTransactionStatus)
	if err := e.Store.PutCharge(ctx, row, e.now()); err != nil {
		return state.Charge{}, false, fmt.Errorf("record %s: %w", key, err)
	}
	return row, true, nil
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
		IdempotencyKey: a.Key, ExternalID: extID, Request: body}, e.now())
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
func (e *Engine) resolveCharge(ctx context.Context, op state.Operation) Resolution {
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
	st, err := e.DOKU.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: op.IdempotencyKey}, doku.RequestOptions{})
	var derr *doku.Error
	var cs state.ChargeStatus
	switch {
	case errors.As(err, &derr) && derr.Code.HTTPStatus() == 404:
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
