package reconcile

import (
	"context"
	"fmt"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/state"
)

// NotificationOutcome says what a notification changed in the state.
type NotificationOutcome struct {
	Charge  state.Charge // the attempt it reported on, when ddctl made it
	Changed bool         // the attempt's status changed
	// Conflict: DOKU says the attempt was paid, and the state had it as
	// not paid (failed, or not sent). The status inquiry confirmed it and
	// the state now says paid, but a later attempt may have been charged
	// too: the operator must look.
	Conflict bool
	Reason   string // why nothing changed, when nothing did
}

// ApplyNotification records what a verified DOKU notification reports on a
// charge attempt ddctl made. A notification is a hint that saves a status
// inquiry, never the only signal (the periodic reconcile asks DOKU anyway):
//
//   - "paid" for an attempt awaiting its customer, of the attempt's
//     amount, in a notification whose signature was verified, is recorded
//     as it is;
//   - anything else that would change the state (a failure, which frees
//     the next attempt; "paid" for an attempt the state has as failed or
//     not sent; any "paid" taken on a bearer token alone, which anyone
//     holding a token could have sent) is first confirmed by a status
//     inquiry, and what DOKU answers is recorded;
//   - an attempt whose request has no recorded answer is left to the
//     resolver, and a paid one is never changed.
func (e *Engine) ApplyNotification(ctx context.Context, n *doku.Notification) (NotificationOutcome, error) {
	row, ok, err := e.Store.ChargeByKey(ctx, n.OriginalPartnerReferenceNo)
	if err != nil {
		return NotificationOutcome{}, fmt.Errorf("read charge %s: %w", n.OriginalPartnerReferenceNo, err)
	}
	if !ok {
		return NotificationOutcome{Reason: "no charge attempt of ddctl has this partnerReferenceNo"}, nil
	}
	out := NotificationOutcome{Charge: row}
	next := chargeStatusOf(n.LatestTransactionStatus)
	amount, amountErr := n.Amount.Money()
	switch {
	case next == state.ChargeAwaitingCustomer:
		out.Reason = fmt.Sprintf("status %s is not final", n.LatestTransactionStatus)
		return out, nil
	case row.Status == state.ChargeSucceeded:
		out.Reason = "the attempt is already paid"
		return out, nil
	case row.Status == state.ChargePending:
		out.Reason = "the attempt's request has no recorded answer; the resolver asks DOKU about it"
		return out, nil
	case next == state.ChargeFailed && row.Status != state.ChargeAwaitingCustomer:
		out.Reason = fmt.Sprintf("the attempt is already %s", row.Status)
		return out, nil
	case row.Status == state.ChargeAwaitingCustomer && next == state.ChargeSucceeded && n.Signed:
		if amountErr != nil || amount != row.Amount {
			out.Reason = fmt.Sprintf("the notification's amount %s is not the attempt's %s; left to the status inquiry", n.Amount.Value, row.Amount)
			return out, nil
		}
		row.Status = state.ChargeSucceeded
		if n.OriginalReferenceNo != "" {
			row.ReferenceNo = n.OriginalReferenceNo
		}
		row.Message = "notification: " + n.LatestTransactionStatus + " " + n.TransactionStatusDesc
		return e.recordNotified(ctx, out, row)
	}
	// A failure, or "paid" for an attempt the state has as failed or not
	// sent: ask DOKU before acting on it.
	st, err := e.DOKU.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: row.PartnerReferenceNo}, doku.RequestOptions{})
	if err != nil {
		out.Reason = fmt.Sprintf("could not confirm it by status inquiry (%v); the periodic reconcile asks again", err)
		return out, nil
	}
	truth := chargeStatusOf(st.LatestTransactionStatus)
	if truth == row.Status || truth == state.ChargeAwaitingCustomer {
		out.Reason = fmt.Sprintf("the status inquiry says %s (%s); nothing to change", st.LatestTransactionStatus, truth)
		return out, nil
	}
	out.Conflict = truth == state.ChargeSucceeded && row.Status != state.ChargeAwaitingCustomer
	row.Status = truth
	if st.OriginalReferenceNo != "" {
		row.ReferenceNo = st.OriginalReferenceNo
	}
	row.Message = "notification " + n.LatestTransactionStatus + ", confirmed by status inquiry " + st.LatestTransactionStatus
	return e.recordNotified(ctx, out, row)
}

func (e *Engine) recordNotified(ctx context.Context, out NotificationOutcome, row state.Charge) (NotificationOutcome, error) {
	if err := e.Store.PutCharge(ctx, row, e.now()); err != nil {
		return out, fmt.Errorf("record %s: %w", row.PartnerReferenceNo, err)
	}
	out.Charge, out.Changed = row, true
	return out, nil
}
