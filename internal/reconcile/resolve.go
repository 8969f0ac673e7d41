package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/state"
)

// Resolution says how an operation left open by an earlier run was settled,
// or why it could not be.
type Resolution struct {
	Address string         `json:"address"`
	Key     string         `json:"idempotency_key"`
	Status  state.OpStatus `json:"status"` // succeeded, not_received, or still open
	Detail  string         `json:"detail"`
}

// Resolve settles the operations left in intent or unknown by an earlier
// run (a crash, a timeout) before anything new is sent: it asks DOKU by
// status inquiry and records what DOKU knows. An operation DOKU has no
// record of becomes not_received, once the settle time has passed since
// its request (Engine.SettleTime), and the plan then sends it again with
// the same key. An operation it cannot settle, or not yet, stays open, and
// nothing new is sent for its address (principle 2, docs/principles.md).
// The status inquiries are made first, at most Parallelism at a time;
// the outcomes are then recorded one after another, in the journal's
// order, as if each had been asked in turn.
func (e *Engine) Resolve(ctx context.Context) ([]Resolution, error) {
	ops, err := e.Store.OpenOperations(ctx)
	if err != nil {
		return nil, fmt.Errorf("read open operations: %w", err)
	}
	var keys []string
	for _, op := range ops {
		switch op.Kind {
		case state.KindCharge:
			keys = append(keys, op.IdempotencyKey)
		case state.KindRefund:
			var req doku.RefundRequest
			if json.Unmarshal(op.Request, &req) == nil {
				keys = append(keys, req.OriginalPartnerReferenceNo)
			}
		}
	}
	asked := e.inquire(ctx, keys)
	var out []Resolution
	for _, op := range ops {
		switch op.Kind {
		case state.KindImport:
			// An import interrupted after its binding was recorded: the
			// binding row says whether it happened; nothing was sent.
			r := Resolution{Address: op.Address, Status: state.OpNotReceived, Detail: "the import was interrupted before it was recorded; run ddctl import again"}
			if b, err := e.Store.Bindings(ctx); err == nil && b[op.Address].Status == state.BindingActive {
				r.Status, r.Detail = state.OpSucceeded, "the import was recorded"
			}
			if err := e.Store.RecordOutcome(context.WithoutCancel(ctx), op.ID, state.Outcome{Status: r.Status, Message: r.Detail}, e.now()); err != nil {
				r.Status, r.Detail = op.Status, "record outcome: "+err.Error()
			}
			out = append(out, r)
			continue
		case state.KindUnbind:
			out = append(out, e.resolveUnbind(ctx, op))
			continue
		case state.KindCharge:
			out = append(out, e.resolveCharge(ctx, op, asked))
			continue
		case state.KindBind:
			// No inquiry exists for a binding, and it moves no money: the
			// plan sends it again (see applyBind).
			r := Resolution{Address: op.Address, Status: state.OpNotReceived, Detail: "a binding request cannot be asked about; it will be sent again"}
			if b, ok, err := e.Store.Binding(ctx, op.Address); err == nil && ok && b.Status != state.BindingUnbound && !b.UpdatedAt.Before(op.CreatedAt) {
				// Its answer was recorded after the intent (a crash
				// between the two writes): DOKU got it.
				r.Status, r.Detail = state.OpSucceeded, "the binding's answer was recorded"
			} else if until, early := e.settling(op.CreatedAt); early {
				r.Status = op.Status
				r.Detail = fmt.Sprintf("a binding request cannot be asked about; it is sent again only after %s (doku.settle_time after the request)", until.UTC().Format(time.RFC3339))
				out = append(out, r)
				continue
			}
			if err := e.Store.RecordOutcome(context.WithoutCancel(ctx), op.ID, state.Outcome{Status: r.Status, Message: r.Detail}, e.now()); err != nil {
				r.Status, r.Detail = op.Status, "record outcome: "+err.Error()
			}
			out = append(out, r)
			continue
		}
		if op.Kind != state.KindRefund {
			out = append(out, Resolution{Address: op.Address, Key: op.IdempotencyKey, Status: op.Status,
				Detail: fmt.Sprintf("operation kind %q cannot be resolved by this version of ddctl", op.Kind)})
			continue
		}
		out = append(out, e.resolveRefund(ctx, op, asked))
	}
	return out, nil
}

func (e *Engine) resolveRefund(ctx context.Context, op state.Operation, asked inquiries) Resolution {
	res := Resolution{Address: op.Address, Key: op.IdempotencyKey, Status: op.Status}
	var req doku.RefundRequest
	if err := json.Unmarshal(op.Request, &req); err != nil {
		res.Detail = fmt.Sprintf("journalled request of operation %d is unreadable: %v", op.ID, err)
		return res
	}
	ans := asked.get(ctx, e, req.OriginalPartnerReferenceNo)
	st, found, err := ans.st, ans.found, ans.err
	until, early := e.settling(op.CreatedAt)
	switch {
	case err == nil && !found && early:
		res.Detail = settlingDetail(ans.at, until, fmt.Sprintf("DOKU knows no payment %q", req.OriginalPartnerReferenceNo))
		return res
	case err == nil && !found:
		// DOKU knows no such payment, so it made no refund of it.
		res.Status, res.Detail = state.OpNotReceived, fmt.Sprintf("DOKU knows no payment %q", req.OriginalPartnerReferenceNo)
	case err != nil:
		res.Detail = fmt.Sprintf("could not ask DOKU about it: %v; it will be asked again next run", err)
		return res
	default:
		p, err := paymentFromStatus(st, e.now())
		if err != nil {
			res.Detail = fmt.Sprintf("DOKU's status answer is unreadable: %v; it will be asked again next run", err)
			return res
		}
		if err := e.Store.PutPayment(ctx, p); err != nil {
			res.Detail = fmt.Sprintf("record payment status: %v", err)
			return res
		}
		res.Status, res.Detail = state.OpNotReceived, "DOKU has no record of it (status inquiry); it will be sent again with the same key"
		for _, r := range st.RefundHistory {
			if r.PartnerReferenceNo != op.IdempotencyKey {
				continue
			}
			var o state.Outcome
			switch r.RefundStatus {
			case "", doku.TxSuccess:
				res.Status, res.Detail = state.OpSucceeded, fmt.Sprintf("DOKU made it (refundNo %s, found by status inquiry)", r.RefundNo)
				o = state.Outcome{Status: state.OpSucceeded, Message: "found by status inquiry", RefundNo: r.RefundNo}
			case doku.TxFailed, doku.TxCanceled:
				res.Status, res.Detail = state.OpFailed, fmt.Sprintf("DOKU lists it as status %s (refundNo %s)", r.RefundStatus, r.RefundNo)
				o = state.Outcome{Status: state.OpFailed, Message: res.Detail, RefundNo: r.RefundNo}
			default:
				// DOKU has it, not yet final: ask again next run.
				res.Detail = fmt.Sprintf("DOKU lists it as status %s; it will be asked again next run", r.RefundStatus)
				return res
			}
			if err := e.Store.RecordRefundOutcome(context.WithoutCancel(ctx), op.ID, o, e.now()); err != nil {
				res.Status, res.Detail = op.Status, fmt.Sprintf("record outcome: %v", err)
			}
			return res
		}
		if early {
			res.Status, res.Detail = op.Status, settlingDetail(ans.at, until, "the payment lists no refund under this key")
			return res
		}
	}
	if err := e.Store.RecordRefundOutcome(context.WithoutCancel(ctx), op.ID,
		state.Outcome{Status: state.OpNotReceived, Message: res.Detail}, e.now()); err != nil {
		res.Status, res.Detail = op.Status, fmt.Sprintf("record outcome: %v", err)
	}
	return res
}

// inquiry is what a status inquiry about a payment gave, and when it was
// asked.
type inquiry struct {
	st    *doku.StatusResponse
	found bool
	err   error
	at    time.Time
}

// inquiries are answers by payment key, asked beforehand.
type inquiries map[string]inquiry

// get returns the answer about key, asking DOKU if it was not asked
// beforehand.
func (q inquiries) get(ctx context.Context, e *Engine, key string) inquiry {
	if a, ok := q[key]; ok {
		return a
	}
	a := inquiry{at: e.now()}
	a.st, a.found, a.err = e.askPayment(ctx, key)
	return a
}

// inquire asks DOKU about each payment key (askPayment), each once, at
// most Parallelism at a time. It only reads: what the answers mean is
// recorded by the caller, one after another.
func (e *Engine) inquire(ctx context.Context, keys []string) inquiries {
	var uniq []string
	seen := map[string]bool{}
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	answers := make([]inquiry, len(uniq))
	e.inParallel(len(uniq), func(i int) {
		answers[i].at = e.now()
		answers[i].st, answers[i].found, answers[i].err = e.askPayment(ctx, uniq[i])
	})
	out := make(inquiries, len(uniq))
	for i, k := range uniq {
		out[k] = answers[i]
	}
	return out
}

// paymentFromStatus is the state's record of a status answer. An answer
// whose amounts do not parse is refused rather than recorded as zero.
func paymentFromStatus(st *doku.StatusResponse, now time.Time) (state.Payment, error) {
	// transAmount is optional in DOKU's status answer: absent, the amount
	// is 0, unknown, and the refund decides from what ddctl knows.
	var amount money.Amount
	if st.TransAmount.Value != "" {
		a, err := st.TransAmount.Money()
		if err != nil {
			return state.Payment{}, fmt.Errorf("payment %q: transAmount: %w", st.OriginalPartnerReferenceNo, err)
		}
		amount = a
	}
	p := state.Payment{
		PartnerReferenceNo: st.OriginalPartnerReferenceNo,
		ReferenceNo:        st.OriginalReferenceNo,
		Status:             st.LatestTransactionStatus,
		Amount:             amount,
		CheckedAt:          now,
	}
	for _, r := range st.RefundHistory {
		if r.RefundStatus != "" && r.RefundStatus != doku.TxSuccess {
			continue
		}
		a, err := r.RefundAmount.Money()
		if err != nil {
			return state.Payment{}, fmt.Errorf("payment %q: refund %s: refundAmount: %w", st.OriginalPartnerReferenceNo, r.RefundNo, err)
		}
		p.Refunds = append(p.Refunds, state.PaymentRefund{PartnerRefundNo: r.PartnerReferenceNo, RefundNo: r.RefundNo, Amount: a})
	}
	return p, nil
}
