package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// FormatVersion is the version of a saved plan's form (plan -out). It
// changes when a field changes meaning, goes away, or comes that apply
// must check: 1.1 added generation (a plan made before a restore is
// refused), moved, verified and over_limit, so a 1.0 plan is refused as
// made by another version. plan -json has its own, JSONFormatVersion.
const FormatVersion = "2.0"

// ActionKind is what an action does at DOKU. Its value is its name.
type ActionKind string

// Action kinds.
const (
	ActionRefund ActionKind = "refund"
	ActionBind   ActionKind = "bind"
	ActionUnbind ActionKind = "unbind"
)

func (k ActionKind) String() string { return string(k) }

// Action is one call apply will make.
type Action struct {
	Kind    ActionKind   `json:"kind"`
	Address string       `json:"address"`
	Payment string       `json:"payment"`
	Amount  money.Amount `json:"amount"` // minor units
	Reason  string       `json:"reason,omitempty"`
	// Key is the idempotency key (partnerRefundNo).
	Key string `json:"idempotency_key"`
	// Resend: an earlier request under Key reached no one (DOKU has no
	// record of it), so the same request goes again with the same key.
	Resend bool `json:"resend,omitempty"`
	// CustomerID and Phone are a bind's or unbind's customer; Binding is
	// the state's binding an unbind removes.
	CustomerID string `json:"customer_id,omitempty"`
	Phone      string `json:"phone,omitempty"`
	Binding    string `json:"binding,omitempty"`
	// BindRequest is what a bind sends, so that a saved plan is whole.
	BindRequest *BindRequest `json:"bind_request,omitempty"`
	// A charge's instance, occurrence and attempt, and the pages its
	// customer returns to (the binding block's).
	Charge     string    `json:"charge,omitempty"`
	Occurrence time.Time `json:"occurrence,omitzero"`
	Attempt    int       `json:"attempt,omitempty"`
	SuccessURL string    `json:"success_url,omitempty"`
	FailedURL  string    `json:"failed_url,omitempty"`
}

// BindRequest is the content of an account binding request.
type BindRequest struct {
	SuccessURL   string `json:"success_url"`
	FailedURL    string `json:"failed_url"`
	CustomerName string `json:"customer_name,omitempty"`
	Email        string `json:"email,omitempty"`
	DeviceModel  string `json:"device_model"`
	OSType       string `json:"os_type"`
	ChannelID    string `json:"channel_id"`
}

// Awaiting is a binding that waits for its customer's OTP and PIN at Link.
type Awaiting struct {
	Address string `json:"address"`
	Link    string `json:"link"`
}

// Waiting is an instance whose time has not come, or that waits for
// something else (Reason).
type Waiting struct {
	Address string    `json:"address"`
	Until   time.Time `json:"until"`
	Reason  string    `json:"reason,omitempty"`
}

// Problem is an instance that gets no call, and why: an error the operator
// must fix, or an outcome ddctl could not yet settle.
type Problem struct {
	Address string `json:"address"`
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"`
	// Code is DOKU's responseCode where DOKU's answer is the reason.
	Code string `json:"snap_code,omitempty"`
	// Transient: DOKU could not be asked; the same plan later may go
	// through (the daemon backs off and tries again).
	Transient bool `json:"-"`
}

// Plan is the contract between plan and apply: apply makes exactly these
// calls, or refuses the plan as stale (principle 4, docs/principles.md). It holds no
// secret.
type Plan struct {
	FormatVersion string       `json:"format_version"`
	CreatedAt     time.Time    `json:"created_at"`
	At            time.Time    `json:"at"` // the time the plan was evaluated for
	Lineage       string       `json:"lineage"`
	Serial        int64        `json:"serial"`
	SpecDigest    string       `json:"spec_digest"`
	Resolved      []Resolution `json:"resolved,omitempty"`
	Actions       []Action     `json:"actions"`
	Waiting       []Waiting    `json:"waiting,omitempty"`
	Awaiting      []Awaiting   `json:"awaiting,omitempty"`
	Errors        []Problem    `json:"errors,omitempty"`
	// Deferred are charges due now that the balance does not cover: no
	// payment request; retried per retry. Deferrals are the same as the
	// attempts apply records as spent (recordDeferrals).
	Deferred  []Problem `json:"deferred,omitempty"`
	Deferrals []Action  `json:"deferrals,omitempty"`
	// Noted are instances that need nothing, with a word why (an unbind
	// of a customer with no binding).
	Noted      []Problem `json:"noted,omitempty"`
	Unresolved []Problem `json:"unresolved,omitempty"`
	// Removed lists state entries whose block is gone: no call is made
	// for them (principle 1, docs/principles.md).
	Removed []string `json:"removed,omitempty"`
	// Converged counts instances that need nothing.
	Converged int `json:"converged"`
	// Targets, when set, narrowed the plan to these addresses (-target).
	Targets Targets `json:"targets,omitempty"`

	// Generation is the state's restore generation the plan was made
	// against: a plan made before a restore never applies after it.
	Generation int64 `json:"generation"`
	// Moved are the moved blocks apply carries out first, with no call.
	Moved []Move `json:"moved,omitempty"`
	// Verified lists the instances DOKU was asked about because the state
	// could not vouch for their keys (a new or restored state).
	Verified []string `json:"verified,omitempty"`
	// OverLimit lists the settings.limits the actions break: apply sends
	// nothing unless it is given a reason to go over them.
	OverLimit []LimitBreach `json:"over_limit,omitempty"`
	// Override is the reason an apply goes over the limits; set by the
	// apply, never read from a plan file.
	Override string `json:"-"`
	// ReviewOnly: made with no customer secrets (no state
	// key), for review only; Unchecked lists the charges shown as they
	// would be sent, their customer's balance not asked.
	ReviewOnly bool     `json:"review_only,omitempty"`
	Unchecked  []string `json:"unchecked,omitempty"`
}

// PlanOptions are a plan's inputs besides the configuration.
type PlanOptions struct {
	At      time.Time // the time the plan is for (-at); the zero value means now
	Targets Targets   // -target; nil plans every instance
}

// HasChanges reports whether applying the plan would call DOKU or change
// the state's addresses (moved blocks).
func (p *Plan) HasChanges() bool { return len(p.Actions) > 0 || len(p.Moved) > 0 }

// Plan resolves open operations, refreshes what it must from DOKU, and
// decides per instance (README.md, "How it works"). The resolver pass
// covers every open operation, targeted or not: nothing new is sent while
// an earlier outcome is unknown. The payments that refunds refer to are
// asked about at most Parallelism at a time, each once; the plan is the
// same as if they had been asked one after another.
//
// Moved blocks are planned first: the decisions are made as if they were
// done, and apply does them. Instances that look like a block renamed
// without a moved block are errors and are not planned (renames). Keys
// the state cannot vouch for are verified at DOKU before anything is
// planned under them.
func (e *Engine) Plan(ctx context.Context, cfg *spec.Config, opts PlanOptions) (*Plan, error) {
	now := opts.At
	if now.IsZero() {
		now = e.now()
	}
	p := &Plan{FormatVersion: FormatVersion, CreatedAt: e.now().UTC(), At: now, Lineage: e.Store.Lineage(),
		SpecDigest: cfg.Digest, Actions: []Action{}, Targets: opts.Targets, ReviewOnly: e.NoCustomerSecrets}
	// What earlier runs left open is settled first, on the state as it
	// is: a move waits for the outcomes of what it moves.
	var err error
	if p.Resolved, err = e.Resolve(ctx); err != nil {
		return nil, err
	}
	g := &guard{blocked: map[string]bool{}}
	moves, err := e.planMoves(ctx, p, cfg, g)
	if err != nil {
		return nil, err
	}
	if len(moves) > 0 {
		view := movedStore{Store: e.Store, moves: moves}
		for i := range p.Resolved {
			p.Resolved[i].Address = view.fwd(p.Resolved[i].Address)
		}
		moved := *e
		moved.Store = view
		return moved.plan(ctx, cfg, p, now, g)
	}
	return e.plan(ctx, cfg, p, now, g)
}

func (e *Engine) plan(ctx context.Context, cfg *spec.Config, p *Plan, now time.Time, g *guard) (*Plan, error) {
	cont, err := e.Store.Continuity(ctx)
	if err != nil {
		return nil, err
	}
	p.Generation = cont.Generation
	g.continuity = cont
	resolved := p.Resolved
	unsettled := map[string]bool{}
	for _, r := range resolved {
		if r.Status.Open() {
			unsettled[r.Address] = true
			p.Unresolved = append(p.Unresolved, Problem{Address: r.Address, Summary: "outcome of an earlier request is unknown", Detail: r.Detail})
		}
	}

	if err := e.refreshCharges(ctx, p, cfg, unsettled); err != nil {
		return nil, err
	}
	// Before refunds: a refund needs its payer's binding active, and one
	// the customer approved since the last plan counts already.
	if err := e.activateBindings(ctx, p, unsettled); err != nil {
		return nil, err
	}
	refunds, err := e.Store.Refunds(ctx)
	if err != nil {
		return nil, fmt.Errorf("read refunds: %w", err)
	}
	if err := e.renames(ctx, p, cfg, g, refunds); err != nil {
		return nil, err
	}
	if err := e.verifyRefunded(ctx, p, cfg, g, refunds, unsettled); err != nil {
		return nil, err
	}
	// What DOKU said of payments matters only to refunds the state has not
	// made yet: a converged plan does without reading it (10,000 payments
	// and their refunds, a tenth of a converged plan of 10,000 refunds).
	payments := map[string]state.Payment{}
	if slices.ContainsFunc(cfg.Refunds, func(r spec.Refund) bool { _, ok := refunds[r.Address]; return !ok }) {
		if payments, err = e.Store.Payments(ctx); err != nil {
			return nil, fmt.Errorf("read payments: %w", err)
		}
	}
	// The charges are read again (refreshCharges may have settled some)
	// only when a refund refunds a charge occurrence: 12,000 occurrences
	// are a third of a converged plan's reading otherwise.
	var charges []state.Charge
	if slices.ContainsFunc(cfg.Refunds, func(r spec.Refund) bool { return r.Charge != "" }) {
		if charges, err = e.Store.Charges(ctx); err != nil {
			return nil, fmt.Errorf("read charges: %w", err)
		}
	}
	// planned sums, per payment, what is on its way: refunds sent whose
	// outcome is open or to be sent again, and what this plan refunds, so
	// that two blocks cannot together refund more than was paid.
	planned := map[string]money.Amount{}
	for _, r := range refunds {
		if r.Status == state.RefundPending {
			planned[r.Payment] += r.Amount
		}
	}
	view := &refundView{refunds: refunds, payments: payments, paid: paidOccurrences(charges),
		targets: p.Targets, unsettled: unsettled, blocked: g.blocked, now: now, since: cont.Since}
	var bindings map[string]state.Binding // read when a refund needs them
	bindingOf := func(addr string) (state.Binding, bool) {
		if bindings == nil {
			if bindings, err = e.Store.Bindings(ctx); err != nil {
				bindings = map[string]state.Binding{}
			}
		}
		b, ok := bindings[addr]
		return b, ok
	}
	// The payments this plan must ask about are asked first, at most
	// Parallelism at a time (2,000 inquiries one after another at 50 ms
	// each would take 100 s); the decisions below are then made in the
	// configuration's order, as if each had been asked in turn. Each
	// payment is asked once, and none already final in the state or made
	// by ddctl itself (principle 3, docs/principles.md).
	asked := e.askPayments(ctx, view.toAsk(cfg.Refunds))
	desired := map[string]bool{}
	for _, want := range cfg.Refunds {
		desired[want.Address] = true
		in := view.classify(want)
		switch in.kind {
		case refundSkipped:
			continue
		case refundChargeUnpaid:
			p.Waiting = append(p.Waiting, Waiting{Address: want.Address, Reason: "its charge occurrence has not been paid (yet)"})
			continue
		case refundKnown:
			if err := e.planKnownRefund(ctx, p, cfg, in, bindingOf, cont); err != nil {
				return nil, err
			}
			continue
		case refundNotYet:
			p.Waiting = append(p.Waiting, Waiting{Address: want.Address, Until: want.NotBefore})
			continue
		}
		// DOKU takes a refund only with its payer's customer token: one
		// that names no payer is an error before DOKU is asked anything
		// (toAsk leaves it out).
		if in.binding == "" {
			e.payerReady(p, cfg, in.want, in.binding, bindingOf)
			continue
		}
		switch in.kind {
		case refundAsk:
			ans, ok := asked[in.want.Payment]
			if !ok {
				ans.pay, ans.err = e.refreshPayment(ctx, in.want.Payment)
				asked[in.want.Payment] = ans
			}
			if ans.err != nil {
				p.Errors = append(p.Errors, paymentProblem(in.want, ans.err))
				continue
			}
			in.pay = ans.pay
			payments[in.want.Payment] = ans.pay
		}
		// binding is the payer's binding when ddctl made the payment: the
		// refund is sent with its customer token (Authorization-Customer).
		want, pay, binding := in.want, in.pay, in.binding
		if pay.Amount == 0 && in.charged > 0 {
			// DOKU's status answer gave no amount (transAmount is
			// optional): ddctl charged this payment, and knows it.
			pay.Amount = in.charged
		}
		key := IdempotencyKey(cfg.Settings.ReferencePrefix, want.Address, "", 1)
		if r, ok := refundByKey(pay, refundKeys(cfg, want.Address)...); ok {
			// DOKU made this refund under our key (or the key of the
			// address a moved block brought it from): a lost state, or a
			// run whose journal did not survive. Adopt it; never send it
			// again.
			adopted := state.Refund{Address: want.Address, Payment: want.Payment, Amount: r.Amount, PartnerRefundNo: r.PartnerRefundNo, RefundNo: r.RefundNo}
			if err := e.Store.AdoptRefund(ctx, adopted, e.now()); err != nil {
				return nil, fmt.Errorf("adopt %s: %w", want.Address, err)
			}
			p.Converged++
			continue
		}
		amount, prob := refundAmount(cfg.DOKU.RefundPolicy, want, pay, planned[want.Payment])
		if prob != nil {
			p.Errors = append(p.Errors, *prob)
			continue
		}
		// Adopting needed no token; sending does.
		if !e.payerReady(p, cfg, want, binding, bindingOf) {
			continue
		}
		planned[want.Payment] += amount
		p.Actions = append(p.Actions, Action{Kind: ActionRefund, Address: want.Address, Payment: want.Payment,
			Amount: amount, Reason: want.Reason, Key: key, Binding: binding})
	}
	for addr := range refunds {
		if !desired[addr] && p.Targets.Match(addr) {
			p.Removed = append(p.Removed, addr)
		}
	}
	if err := e.planBindings(ctx, p, cfg, unsettled, g); err != nil {
		return nil, err
	}
	holdUnbinds(p)
	if err := e.planCharges(ctx, p, cfg, now, unsettled, g); err != nil {
		return nil, err
	}
	if err := e.checkLimits(ctx, p, cfg, now); err != nil {
		return nil, err
	}
	sort.Strings(p.Removed)
	// The serial is read after the plan's own writes (resolutions, payment
	// answers), so that applying this plan right away finds it unchanged.
	if p.Serial, err = e.Store.Serial(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// planKnownRefund decides for an instance the state already has. A
// pending refund whose last request never reached DOKU is sent again with
// the same key; but first, when the state cannot vouch for that key (it
// was restored since), DOKU is asked whether it has the refund, and when
// the request never left because the payer's binding gave no customer
// token, it waits until the binding changes.
func (e *Engine) planKnownRefund(ctx context.Context, p *Plan, cfg *spec.Config, in refundInput, bindingOf func(string) (state.Binding, bool), cont state.Continuity) error {
	want, have, binding := in.want, in.have, in.binding
	switch have.Status {
	case state.RefundSucceeded:
		if have.Payment != want.Payment || (want.Amount != 0 && want.Amount != have.Amount) {
			p.Errors = append(p.Errors, Problem{Address: want.Address,
				Summary: "refunds are immutable",
				Detail: fmt.Sprintf("%s already refunded %s of payment %q (refundNo %s); this block now asks for %s of %q. Restore the block, or write a new block for a new refund.",
					want.Address, have.Amount, have.Payment, have.RefundNo, amountText(want.Amount), want.Payment)})
			return nil
		}
		p.Converged++
	case state.RefundFailed:
		p.Errors = append(p.Errors, Problem{Address: want.Address, Code: have.SNAPCode,
			Summary: "DOKU refused this refund",
			Detail:  fmt.Sprintf("%s %s. ddctl does not send a refused refund again on its own.", have.SNAPCode, have.Message)})
	default:
		// Pending with no open operation: the last request reached no one.
		// Send it again, same key and same amount, with its payer's token.
		if strings.HasPrefix(have.Message, notSentPrefix) && refusedTokenCode(have.SNAPCode) && binding != "" {
			if b, ok := bindingOf(binding); !ok || !b.UpdatedAt.After(have.UpdatedAt) {
				p.Errors = append(p.Errors, Problem{Address: want.Address, Code: have.SNAPCode, Summary: "not sent: the payer's binding gives no customer token",
					Detail: strings.TrimPrefix(have.Message, notSentPrefix) + "."})
				return nil
			}
		}
		vouched, err := e.vouches(ctx, cont, have.PartnerRefundNo, have.UpdatedAt)
		if err != nil {
			return err
		}
		if !vouched {
			p.Verified = append(p.Verified, want.Address)
			pay, err := e.refreshPayment(ctx, have.Payment)
			if err != nil {
				p.Errors = append(p.Errors, paymentProblem(want, err))
				return nil
			}
			if r, ok := refundByKey(pay, have.PartnerRefundNo); ok {
				adopted := state.Refund{Address: want.Address, Payment: have.Payment, Amount: r.Amount, PartnerRefundNo: have.PartnerRefundNo, RefundNo: r.RefundNo}
				if err := e.Store.AdoptRefund(ctx, adopted, e.now()); err != nil {
					return fmt.Errorf("adopt %s: %w", want.Address, err)
				}
				p.Converged++
				return nil
			}
		}
		if !e.payerReady(p, cfg, want, binding, bindingOf) {
			return nil
		}
		p.Actions = append(p.Actions, Action{Kind: ActionRefund, Address: want.Address, Payment: have.Payment,
			Amount: have.Amount, Reason: want.Reason, Key: have.PartnerRefundNo, Resend: true, Binding: binding})
	}
	return nil
}

// refundKeys are the keys the refund at addr could have been sent under:
// its own, and those of the addresses moved blocks brought it from.
func refundKeys(cfg *spec.Config, addr string) []string {
	keys := []string{IdempotencyKey(cfg.Settings.ReferencePrefix, addr, "", 1)}
	for _, a := range cfg.FormerAddresses(addr) {
		keys = append(keys, IdempotencyKey(cfg.Settings.ReferencePrefix, a, "", 1))
	}
	return keys
}

func amountText(a money.Amount) string {
	if a == 0 {
		return "the full amount"
	}
	return a.String()
}

// final reports whether a payment status will not change on its own, so
// that a kept answer can stand in for asking again.
func final(status string) bool {
	switch status {
	case doku.TxInitiated, doku.TxPaying, doku.TxPending:
		return false
	}
	return true
}

// errNoSuchPayment is DOKU's answer that it has no payment under a
// reference: "Transaction Not Found" or status 07.
var errNoSuchPayment = errors.New("DOKU has no payment under this reference")

// refreshPayment asks DOKU about a payment once and keeps the answer.
func (e *Engine) refreshPayment(ctx context.Context, ref string) (state.Payment, error) {
	st, found, err := e.askPayment(ctx, ref)
	if err != nil {
		return state.Payment{}, err
	}
	if !found {
		return state.Payment{}, errNoSuchPayment
	}
	p, err := paymentFromStatus(st, e.now())
	if err != nil {
		return state.Payment{}, err
	}
	if err := e.Store.PutPayment(ctx, p); err != nil {
		return state.Payment{}, fmt.Errorf("record payment %s: %w", ref, err)
	}
	return p, nil
}

func paymentProblem(want spec.Refund, err error) Problem {
	if errors.Is(err, errNoSuchPayment) {
		return Problem{Address: want.Address, Summary: "payment not found",
			Detail: fmt.Sprintf("DOKU knows no payment %q (status inquiry: status 07, not found). Check the block's payment reference.", want.Payment)}
	}
	return Problem{Address: want.Address, Summary: "could not ask DOKU about the payment", Transient: true,
		Detail: fmt.Sprintf("%v. Nothing was sent for this refund; run plan again later.", err)}
}

// refundByKey is the refund of p made under one of keys, if DOKU lists
// one.
func refundByKey(p state.Payment, keys ...string) (state.PaymentRefund, bool) {
	for _, r := range p.Refunds {
		if slices.Contains(keys, r.PartnerRefundNo) {
			return r, true
		}
	}
	return state.PaymentRefund{}, false
}

// refundAmount is what a refund instance will refund, or why it cannot be
// made, under the channel's refund policy. alreadyPlanned is what this plan
// already refunds of the same payment.
func refundAmount(policy string, want spec.Refund, pay state.Payment, alreadyPlanned money.Amount) (money.Amount, *Problem) {
	problem := func(summary, format string, args ...any) *Problem {
		return &Problem{Address: want.Address, Summary: summary, Detail: fmt.Sprintf(format, args...)}
	}
	if pay.Status != doku.TxSuccess && pay.Status != doku.TxRefunded {
		return 0, problem("payment is not paid",
			"payment %q has status %s at DOKU; only a paid payment can be refunded.", want.Payment, pay.Status)
	}
	if pay.Amount == 0 {
		// DOKU's status answer gave no amount (transAmount is optional)
		// and ddctl did not make the payment: the block's amount is all
		// there is to go by; DOKU refuses a refund that does not fit.
		if want.Amount == 0 {
			return 0, problem("payment amount unknown",
				"DOKU's status answer for payment %q gives no amount (transAmount), so a full refund's amount is not known. Write the paid amount in the block (amount = ...); nothing was sent.", want.Payment)
		}
		if policy != "partial" && (pay.Refunded() > 0 || alreadyPlanned > 0) {
			return 0, problem("payment already refunded",
				"payment %q already has a refund%s, and Allo refunds are full-only (refund_policy = \"full\").", want.Payment, plannedNote(alreadyPlanned))
		}
		return want.Amount, nil
	}
	refunded := pay.Refunded()
	if pay.Status == doku.TxRefunded && refunded == 0 {
		// DOKU says refunded but lists no refund: take it at its word.
		refunded = pay.Amount
	}
	left := pay.Amount - refunded - alreadyPlanned
	amount := want.Amount
	if amount == 0 {
		amount = pay.Amount - refunded
	}
	if policy != "partial" {
		if refunded > 0 || alreadyPlanned > 0 {
			return 0, problem("payment already refunded",
				"payment %q already has a refund (%s of %s)%s, and Allo refunds are full-only (refund_policy = \"full\").",
				want.Payment, refunded+alreadyPlanned, pay.Amount, plannedNote(alreadyPlanned))
		}
		if amount != pay.Amount {
			return 0, problem("refund must be the full amount",
				"payment %q was paid %s; this block refunds %s. Allo refunds are full-only: remove amount, or set it to the paid amount.",
				want.Payment, pay.Amount, amount)
		}
		return amount, nil
	}
	if amount <= 0 || amount > left {
		return 0, problem("refund exceeds what is left",
			"payment %q was paid %s and %s of it is refunded or planned; %s is left, this block asks for %s.",
			want.Payment, pay.Amount, refunded+alreadyPlanned, left, amount)
	}
	return amount, nil
}

func plannedNote(planned money.Amount) string {
	if planned == 0 {
		return ""
	}
	return " on its way from ddctl"
}

// refundKind is where a refund instance stands before DOKU is asked.
type refundKind int

const (
	refundSkipped      refundKind = iota // its outcome is unsettled, or -target leaves it out
	refundChargeUnpaid                   // it refunds a charge occurrence not paid (yet)
	refundKnown                          // the state has it: decided without DOKU
	refundNotYet                         // not_before is in the future
	refundAsk                            // its payment must be asked about
	refundReady                          // its payment is known: final in the state, or charged by ddctl
)

// refundInput is a refund instance as the state describes it.
type refundInput struct {
	kind refundKind
	// want is the instance, its Payment the charge attempt's
	// partnerReferenceNo when it refunds a charge occurrence.
	want    spec.Refund
	binding string        // the payer's binding: the charge's when ddctl made the payment, else the block's
	charged money.Amount  // what ddctl charged, when it made the payment
	have    state.Refund  // refundKnown
	pay     state.Payment // refundReady
}

// refundView is what the state says about refunds, for the decisions of
// one plan. Its maps are the plan's own.
type refundView struct {
	refunds   map[string]state.Refund
	payments  map[string]state.Payment
	paid      map[occurrenceKey]state.Charge
	targets   Targets
	unsettled map[string]bool
	blocked   map[string]bool // looks like a rename without a moved block: not planned
	now       time.Time
	since     time.Time // the state vouches for keys from then on (Continuity.Since)

	refundsOf map[string][]state.PaymentRefund // succeeded refunds by payment; built on first use
}

type occurrenceKey struct {
	charge string
	at     int64 // UnixNano
}

// paidOccurrences indexes the attempt that paid each charge occurrence:
// the first succeeded one, in the state's order.
func paidOccurrences(charges []state.Charge) map[occurrenceKey]state.Charge {
	out := map[occurrenceKey]state.Charge{}
	for _, c := range charges {
		k := occurrenceKey{c.Address, c.Occurrence.UnixNano()}
		if _, ok := out[k]; !ok && c.Status == state.ChargeSucceeded {
			out[k] = c
		}
	}
	return out
}

// classify says where want stands, from the state alone (README.md, "How
// it works"). It asks DOKU nothing and writes nothing, so that the
// payments to ask about can be listed before the decisions are made.
func (v *refundView) classify(want spec.Refund) refundInput {
	in := refundInput{want: want, binding: want.Binding}
	if v.unsettled[want.Address] || !v.targets.Match(want.Address) || v.blocked[want.Address] {
		return in // refundSkipped
	}
	var chargedAmount money.Amount
	if want.Charge != "" {
		// A refund of a charge occurrence refunds the attempt that
		// succeeded; until one has, it waits.
		paid, ok := v.paid[occurrenceKey{want.Charge, want.Occurrence.UnixNano()}]
		if !ok {
			in.kind = refundChargeUnpaid
			return in
		}
		in.want.Payment, in.binding, chargedAmount = paid.PartnerReferenceNo, paid.BindingAddress, paid.Amount
		in.charged = chargedAmount
	}
	if have, ok := v.refunds[want.Address]; ok {
		in.kind, in.have = refundKnown, have
		return in
	}
	if !want.NotBefore.IsZero() && v.now.Before(want.NotBefore) {
		in.kind = refundNotYet
		return in
	}
	ref := in.want.Payment
	pay, ok := v.payments[ref]
	if ok && pay.CheckedAt.Before(v.since) {
		// DOKU's answer predates what the state vouches for (it was
		// restored since): a refund made since would not show in it.
		ok = false
	}
	if !ok && chargedAmount > 0 && !want.Occurrence.Before(v.since) {
		// ddctl made this payment and saw it paid, after the state began
		// keeping its records: nothing to ask (README.md, "How
		// it works"). Before then, a lost or restored state may not know
		// of a refund already made: DOKU is asked.
		pay, ok = state.Payment{PartnerReferenceNo: ref, Amount: chargedAmount, Status: doku.TxSuccess, Refunds: v.succeededRefunds(ref)}, true
	}
	if !ok || !final(pay.Status) {
		in.kind = refundAsk
		return in
	}
	in.kind, in.pay = refundReady, pay
	return in
}

// succeededRefunds are the refunds of payment the state records as
// succeeded, by address.
func (v *refundView) succeededRefunds(payment string) []state.PaymentRefund {
	if v.refundsOf == nil {
		v.refundsOf = map[string][]state.PaymentRefund{}
		addrs := make([]string, 0, len(v.refunds))
		for a := range v.refunds {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		for _, a := range addrs {
			if r := v.refunds[a]; r.Status == state.RefundSucceeded {
				v.refundsOf[r.Payment] = append(v.refundsOf[r.Payment], state.PaymentRefund{PartnerRefundNo: r.PartnerRefundNo, RefundNo: r.RefundNo, Amount: r.Amount})
			}
		}
	}
	return v.refundsOf[payment]
}

// toAsk lists the payments the refunds in wants need DOKU's word on, each
// once, in the order of their first refund.
func (v *refundView) toAsk(wants []spec.Refund) []string {
	var refs []string
	seen := map[string]bool{}
	for _, want := range wants {
		in := v.classify(want)
		if in.kind == refundAsk && in.binding != "" && !seen[in.want.Payment] {
			seen[in.want.Payment] = true
			refs = append(refs, in.want.Payment)
		}
	}
	return refs
}

// inParallel calls f(i) for each i below n, at most Parallelism at a
// time, and returns when all have returned. f must only read DOKU and
// write its own result: nothing that sends money or writes the journal.
func (e *Engine) inParallel(n int, f func(i int)) {
	workers := min(cmp.Or(max(e.Parallelism, 0), DefaultParallelism), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

// paymentAnswer is what asking about a payment gave.
type paymentAnswer struct {
	pay state.Payment
	err error
}

// askPayments asks DOKU about each payment in refs (refreshPayment), at
// most Parallelism at a time, and returns the answers by reference. The
// client's rate limit still paces the requests.
func (e *Engine) askPayments(ctx context.Context, refs []string) map[string]paymentAnswer {
	answers := make([]paymentAnswer, len(refs))
	e.inParallel(len(refs), func(i int) {
		answers[i].pay, answers[i].err = e.refreshPayment(ctx, refs[i])
	})
	out := make(map[string]paymentAnswer, len(refs))
	for i, ref := range refs {
		out[ref] = answers[i]
	}
	return out
}
