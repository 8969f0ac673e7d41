package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// DeviceID is the X-DEVICE-ID ddctl sends with a binding request: the
// request comes from the merchant's back office, not a customer's device
// (which header value DOKU expects then is UNCONFIRMED, docs/doku.md#headers).
const DeviceID = "ddctl"

// planBindings decides the binding and unbind instances (README.md, "How
// it works"), from the state as activateBindings left it.
func (e *Engine) planBindings(ctx context.Context, p *Plan, cfg *spec.Config, unsettled map[string]bool, g *guard) error {
	have, err := e.Store.Bindings(ctx)
	if err != nil {
		return fmt.Errorf("read bindings: %w", err)
	}
	desired := map[string]bool{}
	for _, want := range cfg.Bindings {
		desired[want.Address] = true
		if unsettled[want.Address] || !p.Targets.Match(want.Address) || g.blocked[want.Address] {
			continue
		}
		b, ok := have[want.Address]
		switch {
		case ok && b.Status == state.BindingActive:
			p.Converged++
		case ok && b.Status == state.BindingPending:
			p.Awaiting = append(p.Awaiting, Awaiting{Address: want.Address, Link: b.RedirectURL})
		case ok && b.Status == state.BindingUnbound:
			p.Errors = append(p.Errors, Problem{Address: want.Address, Summary: "binding was unbound",
				Detail: "An unbind removed this binding. To bind the customer again, remove the unbind block and run ddctl state rm " + want.Address + "."})
		case !e.Store.KeepsSecrets() && !e.NoCustomerSecrets:
			// The answer's authCode must be kept, encrypted: no request
			// goes out that the state could not record.
			p.Errors = append(p.Errors, Problem{Address: want.Address, Summary: "no state key",
				Detail: "A binding's authCode is kept encrypted in the state. Set DDCTL_STATE_KEY (64 hex digits) or DDCTL_STATE_KEY_FILE; nothing was sent."})
		default:
			p.Actions = append(p.Actions, Action{Kind: ActionBind, Address: want.Address, CustomerID: want.CustomerID, Phone: want.Phone,
				BindRequest: &BindRequest{SuccessURL: want.SuccessURL, FailedURL: want.FailedURL, CustomerName: want.CustomerName,
					Email: want.Email, DeviceModel: want.DeviceModel, OSType: want.OSType, ChannelID: want.ChannelID}})
		}
	}
	for _, want := range cfg.Unbinds {
		desired[want.Address] = true
		if unsettled[want.Address] || !p.Targets.Match(want.Address) {
			continue
		}
		var target string
		for addr, b := range have {
			if b.CustomerID == want.CustomerID && b.Status == state.BindingActive {
				target = addr
			}
		}
		if target == "" {
			p.Converged++
			p.Noted = append(p.Noted, Problem{Address: want.Address,
				Summary: fmt.Sprintf("no active binding of customer %q in the state: nothing to unbind", want.CustomerID)})
			continue
		}
		p.Actions = append(p.Actions, Action{Kind: ActionUnbind, Address: want.Address, CustomerID: want.CustomerID, Binding: target, Reason: want.Reason})
	}
	for addr := range have {
		if !desired[addr] && p.Targets.Match(addr) {
			p.Removed = append(p.Removed, addr)
		}
	}
	return nil
}

// applyBind sends a binding request. It moves no money, and SNAP has no
// inquiry for it: an unknown outcome is settled by sending it again, which
// at worst leaves DOKU a second request the customer never confirms.
func (e *Engine) applyBind(ctx context.Context, a Action, runID int64) ActionResult {
	out := ActionResult{Action: a}
	want := a.BindRequest
	if want == nil {
		out.Status, out.Message = ResultSkipped, "the plan holds no binding request"
		return out
	}
	req := doku.BindingRequest{PhoneNo: a.Phone, AdditionalInfo: doku.BindingInfo{
		Channel: doku.Channel, CustIDMerchant: a.CustomerID, CustomerName: want.CustomerName, Email: want.Email,
		SuccessRegistrationURL: want.SuccessURL, FailedRegistrationURL: want.FailedURL,
		DeviceModel: want.DeviceModel, OSType: want.OSType, ChannelID: want.ChannelID,
	}}
	body, _ := doku.Marshal(req)
	extID := doku.NewExternalID(e.now())
	e.crash(CrashBeforeIntent, a)
	opID, err := e.Store.RecordIntent(ctx, state.Operation{RunID: runID, Address: a.Address, Kind: state.KindBind, ExternalID: extID, Request: body}, e.now())
	if err != nil {
		out.Status, out.Message = ResultSkipped, err.Error()
		return out
	}
	e.crash(CrashAfterIntent, a)
	resp, err := e.DOKU.BindAccount(e.sendContext(context.WithoutCancel(ctx), a, extID), req, doku.RequestOptions{ExternalID: extID, DeviceID: DeviceID})
	e.crash(CrashAfterResponse, a)
	o, st := outcome(err)
	out.Status = st
	e.crash(CrashBeforeOutcome, a)
	if err == nil {
		o.HTTPStatus, o.SNAPCode, o.Message = 200, string(resp.ResponseCode), resp.ResponseMessage
		b := state.Binding{Address: a.Address, CustomerID: a.CustomerID, Phone: a.Phone, Status: state.BindingPending,
			ReferenceNo: resp.ReferenceNo, RedirectURL: resp.RedirectURL, AuthCode: secret.New(resp.AdditionalInfo.AuthCode)}
		if perr := e.Store.PutBinding(context.WithoutCancel(ctx), b, e.now()); perr != nil {
			o.Status, out.Status = state.OpUnknown, ResultUnknown
			o.Message = "record binding: " + perr.Error()
		}
		out.Link = resp.RedirectURL
	}
	if o.Status == state.OpUnknown {
		// Nothing to ask: see applyBind's comment.
		o.Status = state.OpNotReceived
	}
	return e.closeJournal(ctx, a, opID, o, err, out)
}

// applyUnbind removes a binding at DOKU.
func (e *Engine) applyUnbind(ctx context.Context, a Action, runID int64) ActionResult {
	out := ActionResult{Action: a}
	have, err := e.Store.Bindings(ctx)
	if err != nil {
		out.Status, out.Message = ResultSkipped, err.Error()
		return out
	}
	b, ok := have[a.Binding]
	if !ok || b.Status != state.BindingActive {
		out.Status, out.Message = ResultSkipped, fmt.Sprintf("%s is no longer an active binding", a.Binding)
		return out
	}
	extID := doku.NewExternalID(e.now())
	e.crash(CrashBeforeIntent, a)
	opID, err := e.Store.RecordIntent(ctx, state.Operation{RunID: runID, Address: a.Address, Kind: state.KindUnbind,
		IdempotencyKey: a.Binding, ExternalID: extID, Request: []byte(`{"binding":"` + a.Binding + `"}`)}, e.now())
	if err != nil {
		out.Status, out.Message = ResultSkipped, err.Error()
		return out
	}
	e.crash(CrashAfterIntent, a)
	resp, err := e.DOKU.Unbind(e.sendContext(context.WithoutCancel(ctx), a, extID), doku.RequestOptions{ExternalID: extID, AuthCode: b.AuthCode})
	e.crash(CrashAfterResponse, a)
	o, st := outcome(err)
	out.Status = st
	e.crash(CrashBeforeOutcome, a)
	if err == nil {
		o.HTTPStatus, o.SNAPCode, o.Message = 200, string(resp.ResponseCode), resp.ResponseMessage
		b.Status = state.BindingUnbound
		if perr := e.Store.PutBinding(context.WithoutCancel(ctx), b, e.now()); perr != nil {
			o.Status, out.Status = state.OpUnknown, ResultUnknown
			o.Message = "record unbinding: " + perr.Error()
		}
	}
	return e.closeJournal(ctx, a, opID, o, err, out)
}

// resolveUnbind settles an unbind left open: a binding whose authCode no
// longer buys a customer token is unbound; one that still does is not
// (the UNCONFIRMED reading doku.BindingGone, docs/doku.md#binding).
func (e *Engine) resolveUnbind(ctx context.Context, op state.Operation) Resolution {
	res := Resolution{Address: op.Address, Key: op.IdempotencyKey, Status: op.Status}
	have, err := e.Store.Bindings(ctx)
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	b, ok := have[op.IdempotencyKey]
	if !ok {
		res.Detail = "the binding is no longer in the state"
		return res
	}
	asked := e.now()
	_, err = e.DOKU.CustomerToken(ctx, b.AuthCode)
	until, early := e.settling(op.CreatedAt)
	switch {
	case err == nil && early:
		res.Detail = settlingDetail(asked, until, "the binding is still active")
		return res
	case err == nil:
		res.Status, res.Detail = state.OpNotReceived, "the binding is still active at DOKU; the unbind will be sent again"
	case doku.BindingGone(err):
		res.Status, res.Detail = state.OpSucceeded, "DOKU no longer gives a token for the binding: it is unbound"
		b.Status = state.BindingUnbound
		if perr := e.Store.PutBinding(context.WithoutCancel(ctx), b, e.now()); perr != nil {
			res.Status, res.Detail = op.Status, "record unbinding: "+perr.Error()
			return res
		}
	default:
		res.Detail = fmt.Sprintf("could not ask DOKU: %v; it will be asked again next run", err)
		return res
	}
	if err := e.Store.RecordOutcome(context.WithoutCancel(ctx), op.ID, state.Outcome{Status: res.Status, Message: res.Detail}, e.now()); err != nil {
		res.Status, res.Detail = op.Status, "record outcome: "+err.Error()
	}
	return res
}

func cmpMessage(msg string, err error) string {
	if msg == "" && err != nil {
		return err.Error()
	}
	return msg
}

// activateBindings asks DOKU about each binding the state has pending:
// one whose authCode buys a customer token is taken as confirmed by its
// customer and recorded active (the UNCONFIRMED reading
// doku.BindingActivation, docs/doku.md#binding).
func (e *Engine) activateBindings(ctx context.Context, p *Plan, unsettled map[string]bool) error {
	if e.NoCustomerSecrets {
		return nil
	}
	have, err := e.Store.Bindings(ctx)
	if err != nil {
		return fmt.Errorf("read bindings: %w", err)
	}
	for addr, b := range have {
		if b.Status != state.BindingPending || unsettled[addr] || !p.Targets.Match(addr) {
			continue
		}
		if _, err := e.DOKU.CustomerToken(ctx, b.AuthCode); err == nil {
			b.Status = state.BindingActive
			if err := e.Store.PutBinding(ctx, b, e.now()); err != nil {
				return fmt.Errorf("record %s active: %w", addr, err)
			}
		}
	}
	return nil
}

// payerReady reports whether the refund want can be sent with its payer's
// customer token, which DOKU requires on every refund
// (docs/doku.md#refund): binding names the payer's binding, and the state
// has it active. Otherwise the refund gets no call, and the plan says
// why: an error when the configuration names no payer or one that can
// give no token, a wait while the binding awaits its customer.
func (e *Engine) payerReady(p *Plan, cfg *spec.Config, want spec.Refund, binding string, bindingOf func(string) (state.Binding, bool)) bool {
	where := fmt.Sprintf("%s:%d", want.DeclRange.Filename, want.DeclRange.Start.Line)
	if binding == "" {
		p.Errors = append(p.Errors, Problem{Address: want.Address, Summary: "the refund names no payer",
			Detail: fmt.Sprintf("DOKU takes a refund only with the payer's customer token, and ddctl did not make payment %q, so it does not know whose it is. "+
				"Name the payer's binding in the block at %s: binding = binding.NAME (a binding block; for an account bound outside ddctl, declare it and adopt it with ddctl import binding.NAME CUSTOMER_ID). Nothing was sent.",
				want.Payment, where)})
		return false
	}
	b, ok := bindingOf(binding)
	switch {
	case ok && b.Status == state.BindingActive:
		return true
	case ok && b.Status == state.BindingPending, !ok && declaresBinding(cfg, binding):
		p.Waiting = append(p.Waiting, Waiting{Address: want.Address,
			Reason: fmt.Sprintf("waits for %s to become active: DOKU takes a refund only with the payer's customer token", binding)})
		return false
	case !ok:
		p.Errors = append(p.Errors, Problem{Address: want.Address, Summary: "the payer's binding is unknown",
			Detail: fmt.Sprintf("The refund needs the customer token of %s, which neither the configuration nor the state has. Declare the binding, or adopt one made outside ddctl with ddctl import %s CUSTOMER_ID. Nothing was sent.", binding, binding)})
	default:
		p.Errors = append(p.Errors, Problem{Address: want.Address, Summary: "the payer's binding gives no customer token",
			Detail: fmt.Sprintf("%s is %s, and DOKU takes a refund only with the payer's customer token. Bind the customer again and name that binding at %s (binding = binding.NAME). Nothing was sent.", binding, b.Status, where)})
	}
	return false
}

func declaresBinding(cfg *spec.Config, addr string) bool {
	return slices.ContainsFunc(cfg.Bindings, func(b spec.Binding) bool { return b.Address == addr })
}

// holdUnbinds keeps an unbind out of a plan that refunds through the
// binding it removes: the refund needs that binding's customer token, and
// the plan's calls run side by side. The unbind waits for the next plan.
func holdUnbinds(p *Plan) {
	refunder := map[string]string{} // binding -> a refund through it
	for _, a := range p.Actions {
		if a.Kind == ActionRefund && a.Binding != "" {
			refunder[a.Binding] = cmp.Or(refunder[a.Binding], a.Address)
		}
	}
	if len(refunder) == 0 {
		return
	}
	p.Actions = slices.DeleteFunc(p.Actions, func(a Action) bool {
		r, held := refunder[a.Binding]
		if a.Kind != ActionUnbind || !held {
			return false
		}
		p.Waiting = append(p.Waiting, Waiting{Address: a.Address,
			Reason: fmt.Sprintf("waits for %s, which needs %s's customer token", r, a.Binding)})
		return true
	})
}
