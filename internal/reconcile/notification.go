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
	Reason  string       // why nothing changed, when nothing did
}

// ApplyNotification records what a verified DOKU notification reports on a
// charge attempt ddctl made. A notification is a hint that saves a status
// inquiry, never the only signal (the periodic reconcile asks DOKU anyway),
// so it moves an attempt only forward and only out of awaiting_customer: an
// attempt whose request has no recorded answer is left to the resolver, a
// final one is never changed, and one whose amount differs from the
// notification's is left to the status inquiry.
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
	amount, err := n.Amount.Money()
	switch {
	case row.Status != state.ChargeAwaitingCustomer:
		out.Reason = fmt.Sprintf("the attempt is %s; only one awaiting its customer is moved by a notification", row.Status)
		return out, nil
	case next == state.ChargeAwaitingCustomer:
		out.Reason = fmt.Sprintf("status %s is not final", n.LatestTransactionStatus)
		return out, nil
	case err != nil || amount != row.Amount:
		out.Reason = fmt.Sprintf("the notification's amount %s is not the attempt's %s; left to the status inquiry", n.Amount.Value, row.Amount)
		return out, nil
	}
	row.Status = next
	if n.OriginalReferenceNo != "" {
		row.ReferenceNo = n.OriginalReferenceNo
	}
	row.Message = "notification: " + n.LatestTransactionStatus + " " + n.TransactionStatusDesc
	if err := e.Store.PutCharge(ctx, row, e.now()); err != nil {
		return out, fmt.Errorf("record %s: %w", row.PartnerReferenceNo, err)
	}
	out.Charge, out.Changed = row, true
	return out, nil
}
