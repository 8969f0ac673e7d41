package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

// ResultStatus is what became of an action.
type ResultStatus string

// Result statuses.
const (
	ResultSucceeded ResultStatus = "succeeded"
	ResultFailed    ResultStatus = "failed"   // DOKU refused it for good
	ResultDeferred  ResultStatus = "deferred" // nothing happened; a later run sends it again
	ResultUnknown   ResultStatus = "unknown"  // may have happened; the next run asks first
	ResultSkipped   ResultStatus = "skipped"  // not sent: the state forbade it, or apply was interrupted
)

func (s ResultStatus) String() string { return string(s) }

// ActionResult is the outcome of one action.
type ActionResult struct {
	Action   Action       `json:"action"`
	Status   ResultStatus `json:"status"`
	RefundNo string       `json:"refund_no,omitempty"`
	// Link is where the customer confirms a binding (OTP and PIN).
	Link    string `json:"link,omitempty"`
	Code    string `json:"snap_code,omitempty"`
	Message string `json:"message,omitempty"`
}

// ApplyResult is what an apply did, action by action, in plan order.
type ApplyResult struct {
	Results []ActionResult `json:"results"`
}

// Count returns how many results have status st.
func (r *ApplyResult) Count(st ResultStatus) int {
	n := 0
	for _, a := range r.Results {
		if a.Status == st {
			n++
		}
	}
	return n
}

// ErrOverLimit is returned by Apply for a plan over settings.limits
// given no reason to go over them (Plan.Override): nothing is sent.
var ErrOverLimit = errors.New("the plan is over settings.limits")

// Apply carries out the plan. A plan over settings.limits with no
// Override is refused with ErrOverLimit, and nothing happens. Otherwise:
// its moved blocks first (a failure stops the apply before anything is
// sent: the plan's decisions assumed them), then its deferrals are
// recorded as attempts spent, then its calls are made, at most
// Parallelism at a time. For each call: the intent is committed to the
// state, then the request is sent, then its outcome is committed through
// a context that cancellation cannot end (README.md, "How
// it works"). A failed action does not stop the others. When ctx is
// cancelled, actions not yet started are skipped and those in flight are
// finished and recorded. report, if not nil, is called after each action,
// from one goroutine at a time.
func (e *Engine) Apply(ctx context.Context, p *Plan, runID int64, report func(ActionResult)) (*ApplyResult, error) {
	res := &ApplyResult{Results: make([]ActionResult, len(p.Actions))}
	if p.ReviewOnly || e.NoCustomerSecrets {
		return res, errors.New("a plan made without customers' secrets (no state key) is for review only: its charges' balances were not checked; nothing was sent")
	}
	if p.Blocked() {
		reasons := make([]string, len(p.OverLimit))
		for i, b := range p.OverLimit {
			reasons[i] = b.Error()
		}
		return res, fmt.Errorf("%w: %s; nothing was sent", ErrOverLimit, strings.Join(reasons, "; "))
	}
	if err := e.applyMoves(ctx, p, runID); err != nil {
		return res, fmt.Errorf("%w; nothing was sent", err)
	}
	if err := e.recordDeferrals(ctx, p); err != nil {
		return res, fmt.Errorf("%w; nothing was sent", err)
	}
	par := e.Parallelism
	if par <= 0 {
		par = DefaultParallelism
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, a := range p.Actions {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			res.Results[i] = ActionResult{Action: a, Status: ResultSkipped, Message: "apply was interrupted before this action started"}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var r ActionResult
			switch a.Kind {
			case ActionBind:
				r = e.applyBind(ctx, a, runID)
			case ActionUnbind:
				r = e.applyUnbind(ctx, a, runID)
			case ActionCharge:
				r = e.applyCharge(ctx, a, runID)
			default:
				r = e.applyRefund(ctx, a, runID)
			}
			mu.Lock()
			defer mu.Unlock()
			res.Results[i] = r
			if report != nil {
				report(r)
			}
		}()
	}
	wg.Wait()
	return res, nil
}

func (e *Engine) applyRefund(ctx context.Context, a Action, runID int64) ActionResult {
	out := ActionResult{Action: a}
	// DOKU takes a refund only with its payer's customer token; the plan
	// saw the binding active, and it may have been removed since.
	auth, err := e.payerAuthCode(ctx, a.Binding)
	if err != nil {
		out.Status = ResultSkipped
		out.Message = fmt.Sprintf("not sent: %v, and DOKU requires its customer token on a refund; plan again", err)
		return out
	}
	req, extID, err := e.refundRequest(ctx, a)
	if err != nil {
		out.Status, out.Message = ResultSkipped, err.Error()
		return out
	}
	body, err := doku.Marshal(req)
	if err != nil {
		out.Status, out.Message = ResultSkipped, fmt.Sprintf("encode request: %v", err)
		return out
	}
	// (1) The intent, committed before any byte leaves.
	e.crash(CrashBeforeIntent, a)
	opID, err := e.Store.RecordRefundIntent(ctx,
		state.Operation{RunID: runID, Address: a.Address, Kind: state.KindRefund, IdempotencyKey: a.Key, ExternalID: extID, Request: body},
		state.Refund{Address: a.Address, Payment: a.Payment, Amount: a.Amount, PartnerRefundNo: a.Key}, e.now())
	if err != nil {
		out.Status, out.Message = ResultSkipped, err.Error()
		return out
	}
	e.crash(CrashAfterIntent, a)
	// (2) The request. Once the intent is committed the request is seen
	// through (the client's timeout bounds it): an interrupted request
	// would only turn a known outcome into an unknown one.
	resp, err := e.DOKU.Refund(e.sendContext(context.WithoutCancel(ctx), a, extID), req, doku.RequestOptions{ExternalID: extID, AuthCode: auth})
	e.crash(CrashAfterResponse, a)
	// (3) The outcome, whatever happened to ctx meanwhile.
	o, st := outcome(err)
	switch {
	case notSent(err):
		// A token the request needed was refused or could not be had:
		// the refund request never left, and DOKU refused nothing of it.
		o.Status, st, o.Message = state.OpNotReceived, ResultSkipped, notSentMessage(err, a.Binding)
	case a.Resend && st == ResultFailed:
		// A refusal of a resend ("already refunded", "invalid amount") may
		// be DOKU answering our own earlier request: ask before concluding.
		o.Status, st = state.OpUnknown, ResultUnknown
	}
	out.Status = st
	if err == nil {
		o.HTTPStatus, o.SNAPCode, o.Message, o.RefundNo = 200, string(resp.ResponseCode), resp.ResponseMessage, resp.RefundNo
		out.RefundNo = resp.RefundNo
	}
	out.Code, out.Message = o.SNAPCode, cmpMessage(o.Message, err)
	e.crash(CrashBeforeOutcome, a)
	if rerr := e.Store.RecordRefundOutcome(context.WithoutCancel(ctx), opID, o, e.now()); rerr != nil {
		// The intent stays open; the next run's resolver settles it.
		out.Status = ResultUnknown
		out.Message = fmt.Sprintf("%s; and recording the outcome failed: %v (the next run will ask DOKU)", out.Message, rerr)
	}
	e.crash(CrashAfterOutcome, a)
	e.log().LogAttrs(ctx, slogLevel(out.Status), "refund", attrs(out)...)
	return out
}

// refundRequest is the request of a refund action and its X-EXTERNAL-ID; a
// resend repeats the journalled one (resendOf).
func (e *Engine) refundRequest(ctx context.Context, a Action) (doku.RefundRequest, string, error) {
	req := doku.RefundRequest{
		OriginalPartnerReferenceNo: a.Payment,
		RefundAmount:               doku.NewAmount(a.Amount),
		Reason:                     a.Reason,
		PartnerRefundNo:            a.Key,
		AdditionalInfo:             doku.ChannelInfo{Channel: doku.Channel},
	}
	if !a.Resend {
		return req, doku.NewExternalID(e.now()), nil
	}
	return resendOf(ctx, e, a, state.KindRefund, req)
}

// resendOf is the request an action sends again: the last journalled
// request of its kind under its key, byte for byte. It keeps that
// request's X-EXTERNAL-ID when the request got no answer and DOKU's day has
// not turned. A
// request DOKU answered with "try later" (401, 429: its HTTP status is
// journalled; the resolver journals its own conclusions with none), or one
// of an earlier day, goes under a new X-EXTERNAL-ID, since DOKU would
// replay its answer to the old one. With no journalled request, fresh is
// sent under a new X-EXTERNAL-ID.
func resendOf[R any](ctx context.Context, e *Engine, a Action, kind string, fresh R) (R, string, error) {
	now := e.now()
	ops, err := e.Store.Operations(ctx, a.Address)
	if err != nil {
		return fresh, "", fmt.Errorf("read the journal of %s: %w", a.Address, err)
	}
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		if op.Kind != kind || op.IdempotencyKey != a.Key {
			continue
		}
		var prev R
		if err := json.Unmarshal(op.Request, &prev); err != nil {
			return fresh, "", fmt.Errorf("journalled request of %s is unreadable: %w", a.Address, err)
		}
		extID := doku.NewExternalID(now)
		if op.HTTPStatus == 0 && sameDay(op.CreatedAt, now) {
			extID = op.ExternalID
		}
		return prev, extID, nil
	}
	return fresh, doku.NewExternalID(now), nil
}

// payerAuthCode is the authCode of the payer's binding at addr, read
// alone (a batch of refunds reads one row each, not every binding); an
// error says why there is none.
func (e *Engine) payerAuthCode(ctx context.Context, addr string) (secret.Value, error) {
	if addr == "" {
		return secret.Value{}, errors.New("the refund names no payer (a plan saved before refunds named their payer's binding)")
	}
	b, ok, err := e.Store.Binding(ctx, addr)
	switch {
	case err != nil:
		return secret.Value{}, fmt.Errorf("read %s: %w", addr, err)
	case !ok || b.Status != state.BindingActive || b.AuthCode.IsZero():
		return secret.Value{}, fmt.Errorf("%s gives no customer token now", addr)
	}
	return b.AuthCode, nil
}

func sameDay(a, b time.Time) bool {
	return a.In(doku.ExternalIDZone).Format(time.DateOnly) == b.In(doku.ExternalIDZone).Format(time.DateOnly)
}

// outcome maps a call's error to the journal's status and the result's.
func outcome(err error) (state.Outcome, ResultStatus) {
	var o state.Outcome
	var derr *doku.Error
	if errors.As(err, &derr) {
		o.HTTPStatus, o.SNAPCode, o.Message = derr.HTTPStatus, string(derr.Code), derr.Message
		if derr.Code == "" && derr.Err != nil {
			o.Message = derr.Err.Error() // no answer: the transport's reason
		}
	}
	switch doku.OutcomeOf(err) {
	case doku.Succeeded:
		o.Status = state.OpSucceeded
		return o, ResultSucceeded
	case doku.Failed:
		o.Status = state.OpFailed
		return o, ResultFailed
	case doku.RetryLater:
		o.Status = state.OpNotReceived
		return o, ResultDeferred
	}
	o.Status = state.OpUnknown
	return o, ResultUnknown
}
