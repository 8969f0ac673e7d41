package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type bundle struct {
	sb     *sandboxtest.Env
	store  *state.Store
	engine *reconcile.Engine
	client *doku.Client
}

func setup(t *testing.T, configure ...func(*sandbox.Config)) *bundle {
	t.Helper()
	sb := sandboxtest.New(t, configure...)
	// The state was created a day before the tests' now: it vouches for
	// every key of the occurrences the tests plan.
	st, err := state.OpenWith(filepath.Join(t.TempDir(), "ddctl.db"), state.OpenOptions{AllowPlaintextSecrets: true,
		NowFunc: func() time.Time { return now.Add(-24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The payments Pay makes are the payer's, bound outside ddctl and
	// adopted: their refunds carry the payer's customer token.
	payer := state.Binding{Address: payerBinding, CustomerID: sandboxtest.PayerCustomerID, Phone: sandboxtest.PayerPhone,
		Status: state.BindingActive, AuthCode: secret.New(sb.PayerAuthCode(t))}
	if err := st.PutBinding(context.Background(), payer, now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := sb.Client(t)
	return &bundle{sb: sb, store: st, client: c, engine: &reconcile.Engine{DOKU: c, Store: st, NowFunc: func() time.Time { return now }}}
}

func config(refunds ...spec.Refund) *spec.Config {
	return &spec.Config{
		Settings: spec.Settings{ReferencePrefix: "TEST", Timezone: "UTC", Location: time.UTC},
		DOKU:     spec.DOKU{RefundPolicy: "full"},
		Refunds:  refunds,
		Digest:   "digest",
	}
}

// payerBinding is the binding, active in every setup's state, through
// which the sandbox's payments were made.
const payerBinding = "binding.payer"

func refund(name, payment string, amount money.Amount) spec.Refund {
	return spec.Refund{Address: "refund." + name, Name: name, Payment: payment, Amount: amount, Reason: "test", Binding: payerBinding}
}

// journalIntent records the intent of refund action a under
// X-EXTERNAL-ID "42" at now, as apply does before it sends, and returns
// the request apply would send.
func (b *bundle) journalIntent(t *testing.T, a reconcile.Action) doku.RefundRequest {
	t.Helper()
	ctx := context.Background()
	req := doku.RefundRequest{OriginalPartnerReferenceNo: a.Payment, RefundAmount: doku.NewAmount(a.Amount),
		Reason: a.Reason, PartnerRefundNo: a.Key, AdditionalInfo: doku.ChannelInfo{Channel: doku.Channel}}
	body, _ := doku.Marshal(req)
	run, _ := b.store.StartRun(ctx, state.Run{Command: "apply", StartedAt: now})
	if _, err := b.store.RecordRefundIntent(ctx, state.Operation{RunID: run, Address: a.Address, Kind: state.KindRefund,
		IdempotencyKey: a.Key, ExternalID: "42", Request: body},
		state.Refund{Address: a.Address, Payment: a.Payment, Amount: a.Amount, PartnerRefundNo: a.Key}, now); err != nil {
		t.Fatal(err)
	}
	return req
}

func (b *bundle) plan(t *testing.T, cfg *spec.Config) *reconcile.Plan {
	t.Helper()
	p, err := b.engine.Plan(context.Background(), cfg, reconcile.PlanOptions{At: now})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func (b *bundle) apply(t *testing.T, p *reconcile.Plan) *reconcile.ApplyResult {
	t.Helper()
	run, err := b.store.StartRun(context.Background(), state.Run{Command: "apply", StartedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.engine.Apply(context.Background(), p, run, nil)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

func TestPlanApplyReplan(t *testing.T) {
	b := setup(t)
	b.sb.Pay(t, "INV-1", 5000000)
	b.sb.Pay(t, "INV-2", 2500050)
	cfg := config(refund("a", "INV-1", 0), refund("b", "INV-2", 2500050))

	p := b.plan(t, cfg)
	if len(p.Actions) != 2 || len(p.Errors) != 0 {
		t.Fatalf("plan: %d actions, errors %+v; want 2 and none", len(p.Actions), p.Errors)
	}
	if p.Actions[0].Amount != 5000000 {
		t.Fatalf("full refund amount=%v, want the paid IDR 50,000.00", p.Actions[0].Amount)
	}
	statusCalls := b.sb.Calls(doku.OpStatus)
	if statusCalls != 2 {
		t.Fatalf("status calls=%d, want one per payment", statusCalls)
	}

	res := b.apply(t, p)
	if res.Count(reconcile.ResultSucceeded) != 2 {
		t.Fatalf("apply: %+v", res.Results)
	}
	if n := len(b.sb.Ledger(t).Refunds); n != 2 {
		t.Fatalf("ledger refunds=%d, want 2", n)
	}
	// Applying did not ask about the payments again.
	if got := b.sb.Calls(doku.OpStatus); got != statusCalls {
		t.Fatalf("status calls after apply=%d, want %d", got, statusCalls)
	}

	before := b.sb.Server.Stats()
	p = b.plan(t, cfg)
	if p.HasChanges() || p.Converged != 2 {
		t.Fatalf("re-plan: %d actions, %d converged; want 0 and 2", len(p.Actions), p.Converged)
	}
	after := b.sb.Server.Stats()
	for op, n := range after.Calls {
		if n != before.Calls[op] {
			t.Fatalf("a converged plan called %s (%d -> %d); want no call at all", op, before.Calls[op], n)
		}
	}
}

// A crash between the intent's commit and the outcome's commit leaves the
// operation in intent. Whether or not the refund reached DOKU, the next
// run makes exactly one refund in all.
func TestIntentLeftByCrash(t *testing.T) {
	for _, sent := range []bool{true, false} {
		name := "NotSent"
		if sent {
			name = "SentAndProcessed"
		}
		t.Run(name, func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			b.sb.Pay(t, "INV-1", 5000000)
			cfg := config(refund("a", "INV-1", 0))
			p := b.plan(t, cfg)
			if len(p.Actions) != 1 {
				t.Fatalf("plan: %+v", p)
			}
			a := p.Actions[0]

			// What apply does up to the crash: the intent, and perhaps the
			// request, but never the outcome.
			req := b.journalIntent(t, a)
			if sent {
				if _, err := b.client.Refund(ctx, req, doku.RequestOptions{ExternalID: "42", AuthCode: secret.New(b.sb.PayerAuthCode(t))}); err != nil {
					t.Fatal(err)
				}
			}
			refundCalls := b.sb.Calls(doku.OpRefund)

			// The next run: plan (which resolves first), then apply.
			p = b.plan(t, cfg)
			if len(p.Resolved) != 1 {
				t.Fatalf("resolved=%+v, want the open operation", p.Resolved)
			}
			res := b.apply(t, p)
			wantCalls := refundCalls
			if !sent {
				wantCalls++ // DOKU had no record: sent again, same key
				if len(p.Actions) != 1 || !p.Actions[0].Resend || p.Actions[0].Key != a.Key {
					t.Fatalf("plan after unsent intent: %+v, want one resend with key %s", p.Actions, a.Key)
				}
				if res.Count(reconcile.ResultSucceeded) != 1 {
					t.Fatalf("apply: %+v", res.Results)
				}
			} else if p.HasChanges() {
				t.Fatalf("plan after a refund DOKU made: %+v, want no action", p.Actions)
			}
			if got := b.sb.Calls(doku.OpRefund); got != wantCalls {
				t.Fatalf("refund calls=%d, want %d", got, wantCalls)
			}
			if n := len(b.sb.Ledger(t).Refunds); n != 1 {
				t.Fatalf("ledger refunds=%d, want exactly 1", n)
			}
			got, ok, _ := b.store.Refund(ctx, a.Address)
			if !ok || got.Status != state.RefundSucceeded {
				t.Fatalf("state refund=%+v, want succeeded", got)
			}
			// And once more: nothing.
			if p := b.plan(t, cfg); p.HasChanges() {
				t.Fatalf("third plan: %+v", p.Actions)
			}
		})
	}
}

// A lost state file: the refund was made, the state is new. The status
// inquiry finds the refund under the deterministic key and adopts it.
func TestLostStateAdoptsRefund(t *testing.T) {
	b := setup(t)
	b.sb.Pay(t, "INV-1", 5000000)
	cfg := config(refund("a", "INV-1", 0))
	b.apply(t, b.plan(t, cfg))

	st2, err := state.Open(filepath.Join(t.TempDir(), "new.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	b.engine.Store = st2
	p := b.plan(t, cfg)
	if p.HasChanges() || p.Converged != 1 {
		t.Fatalf("plan with a new state: %+v, want the refund adopted", p)
	}
	if n := len(b.sb.Ledger(t).Refunds); n != 1 {
		t.Fatalf("ledger refunds=%d, want 1", n)
	}
	got, ok, err := st2.Refund(context.Background(), "refund.a")
	if err != nil || !ok || got.Status != state.RefundSucceeded || got.RefundNo == "" {
		t.Fatalf("new state holds %+v (%v, %v), want the adopted refund", got, ok, err)
	}
	before := b.sb.Server.Stats()
	if p := b.plan(t, cfg); p.HasChanges() || p.Converged != 1 {
		t.Fatalf("second plan with the new state: %+v", p)
	}
	if after := b.sb.Server.Stats(); after.Calls["status"] != before.Calls["status"] {
		t.Fatalf("the second plan asked DOKU again (%d -> %d status calls)", before.Calls["status"], after.Calls["status"])
	}
}

func TestPlanErrors(t *testing.T) {
	b := setup(t)
	b.sb.Pay(t, "INV-1", 5000000)
	cfg := config(
		refund("unknown", "INV-404", 0),
		refund("partial", "INV-1", 100),
	)
	p := b.plan(t, cfg)
	if p.HasChanges() {
		t.Fatalf("actions %+v, want none", p.Actions)
	}
	want := map[string]string{"refund.unknown": "payment not found", "refund.partial": "refund must be the full amount"}
	if len(p.Errors) != len(want) {
		t.Fatalf("errors %+v", p.Errors)
	}
	for _, e := range p.Errors {
		if want[e.Address] != e.Summary {
			t.Fatalf("%s: %q, want %q", e.Address, e.Summary, want[e.Address])
		}
	}
	if got := b.sb.Calls(doku.OpRefund); got != 0 {
		t.Fatalf("refund calls=%d, want 0", got)
	}
}

func TestWaitingUntilNotBefore(t *testing.T) {
	b := setup(t)
	b.sb.Pay(t, "INV-1", 5000000)
	r := refund("later", "INV-1", 0)
	r.NotBefore = now.Add(time.Hour)
	p := b.plan(t, config(r))
	if p.HasChanges() || len(p.Waiting) != 1 || b.sb.Calls(doku.OpStatus) != 0 {
		t.Fatalf("plan before not_before: %+v; status calls %d", p, b.sb.Calls(doku.OpStatus))
	}
	p, err := b.engine.Plan(context.Background(), config(r), reconcile.PlanOptions{At: now.Add(2 * time.Hour)})
	if err != nil || len(p.Actions) != 1 {
		t.Fatalf("plan after not_before: %+v %v", p, err)
	}
}

func TestCheckFresh(t *testing.T) {
	b := setup(t)
	b.sb.Pay(t, "INV-1", 5000000)
	cfg := config(refund("a", "INV-1", 0))
	p := b.plan(t, cfg)
	serial, _ := b.store.Serial(context.Background())
	wall := now
	cur := reconcile.Current{Lineage: b.store.Lineage(), Serial: serial, Generation: 1, SpecDigest: cfg.Digest, Now: wall}
	if err := reconcile.CheckFresh(p, cur); err != nil {
		t.Fatalf("fresh plan refused: %v", err)
	}
	future := *p
	future.At = wall.Add(time.Hour)
	b.apply(t, p)
	serial2, _ := b.store.Serial(context.Background())
	with := func(edit func(*reconcile.Current)) reconcile.Current {
		c := cur
		edit(&c)
		return c
	}
	for name, err := range map[string]error{
		"serial":     reconcile.CheckFresh(p, with(func(c *reconcile.Current) { c.Serial = serial2 })),
		"lineage":    reconcile.CheckFresh(p, with(func(c *reconcile.Current) { c.Lineage = "other" })),
		"generation": reconcile.CheckFresh(p, with(func(c *reconcile.Current) { c.Generation = 2 })),
		"spec":       reconcile.CheckFresh(p, with(func(c *reconcile.Current) { c.SpecDigest = "other" })),
		"too old":    reconcile.CheckFresh(p, with(func(c *reconcile.Current) { c.Now = wall.Add(reconcile.MaxPlanAge + time.Hour) })),
		"-at":        reconcile.CheckFresh(&future, cur),
	} {
		if err == nil {
			t.Fatalf("%s changed: plan accepted", name)
		}
	}
}

// spyDOKU embeds the real client and looks at each refund as it goes out.
type spyDOKU struct {
	reconcile.DOKU
	onRefund func(req doku.RefundRequest, opts doku.RequestOptions)
	onPay    func(req doku.PaymentRequest, opts doku.RequestOptions)
}

func (s spyDOKU) Pay(ctx context.Context, req doku.PaymentRequest, opts doku.RequestOptions) (*doku.PaymentResponse, error) {
	if s.onPay != nil {
		s.onPay(req, opts)
	}
	return s.DOKU.Pay(ctx, req, opts)
}

func (s spyDOKU) Refund(ctx context.Context, req doku.RefundRequest, opts doku.RequestOptions) (*doku.RefundResponse, error) {
	s.onRefund(req, opts)
	return s.DOKU.Refund(ctx, req, opts)
}

// Every refund request leaves only after its intent is committed: the spy
// reads the state file at the moment of sending.
func TestIntentCommittedBeforeSend(t *testing.T) {
	b := setup(t)
	for i := range 5 {
		b.sb.Pay(t, fmt.Sprintf("INV-%d", i), money.Amount(1000*(i+1)))
	}
	var refunds []spec.Refund
	for i := range 5 {
		refunds = append(refunds, refund(fmt.Sprintf("r%d", i), fmt.Sprintf("INV-%d", i), 0))
	}
	cfg := config(refunds...)
	var mu sync.Mutex
	seen := 0
	b.engine.DOKU = spyDOKU{DOKU: b.client, onRefund: func(req doku.RefundRequest, opts doku.RequestOptions) {
		ops, err := b.store.OpenOperations(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, op := range ops {
			if op.IdempotencyKey == req.PartnerRefundNo && op.ExternalID == opts.ExternalID && op.Status == state.OpIntent {
				seen++
				return
			}
		}
		t.Errorf("refund %s (X-EXTERNAL-ID %s) sent with no intent in the state", req.PartnerRefundNo, opts.ExternalID)
	}}
	res := b.apply(t, b.plan(t, cfg))
	if res.Count(reconcile.ResultSucceeded) != 5 || seen != 5 {
		t.Fatalf("succeeded=%d, intents seen at send=%d; want 5 and 5", res.Count(reconcile.ResultSucceeded), seen)
	}
}

// A request DOKU never received is sent again byte for byte, under the
// same key and, the same day, the same X-EXTERNAL-ID.
func TestResendRepeatsJournalledRequest(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	b.sb.Pay(t, "INV-1", 5000000)
	cfg := config(refund("a", "INV-1", 0))
	a := b.plan(t, cfg).Actions[0]
	req := doku.RefundRequest{OriginalPartnerReferenceNo: a.Payment, RefundAmount: doku.NewAmount(a.Amount),
		Reason: "reason at the time", PartnerRefundNo: a.Key, AdditionalInfo: doku.ChannelInfo{Channel: doku.Channel}}
	body, _ := doku.Marshal(req)
	const extID = "777000111"
	run, _ := b.store.StartRun(ctx, state.Run{Command: "apply", StartedAt: now})
	if _, err := b.store.RecordRefundIntent(ctx, state.Operation{RunID: run, Address: a.Address, Kind: state.KindRefund,
		IdempotencyKey: a.Key, ExternalID: extID, Request: body},
		state.Refund{Address: a.Address, Payment: a.Payment, Amount: a.Amount, PartnerRefundNo: a.Key}, now); err != nil {
		t.Fatal(err)
	}
	var sent []string
	b.engine.DOKU = spyDOKU{DOKU: b.client, onRefund: func(r doku.RefundRequest, opts doku.RequestOptions) {
		got, _ := doku.Marshal(r)
		if string(got) != string(body) {
			t.Errorf("resent body %s, want the journalled %s", got, body)
		}
		sent = append(sent, opts.ExternalID)
	}}
	p := b.plan(t, cfg) // resolves: DOKU has no record
	if len(p.Actions) != 1 || !p.Actions[0].Resend {
		t.Fatalf("plan: %+v, want one resend", p.Actions)
	}
	if res := b.apply(t, p); res.Count(reconcile.ResultSucceeded) != 1 {
		t.Fatalf("apply: %+v", res.Results)
	}
	if len(sent) != 1 || sent[0] != extID {
		t.Fatalf("X-EXTERNAL-IDs sent %v, want [%s]", sent, extID)
	}
}

// The refund is made but its answer is lost: apply records an unknown
// outcome, and the next plan settles it by inquiry, sending nothing.
func TestDroppedAnswerResolvedByInquiry(t *testing.T) {
	b := setup(t)
	b.sb.Pay(t, "INV-1", 5000000)
	cfg := config(refund("a", "INV-1", 0))
	p := b.plan(t, cfg)
	b.sb.Server.SetFaults(sandbox.Faults{DropRate: 1, Ops: []string{"refund"}})
	res := b.apply(t, p)
	if res.Count(reconcile.ResultUnknown) != 1 {
		t.Fatalf("apply under a dropped answer: %+v, want unknown", res.Results)
	}
	b.sb.Server.SetFaults(sandbox.Faults{})
	calls := b.sb.Calls(doku.OpRefund)
	p = b.plan(t, cfg)
	if p.HasChanges() || len(p.Resolved) != 1 || p.Resolved[0].Status != state.OpSucceeded {
		t.Fatalf("plan after the drop: resolved %+v, actions %+v", p.Resolved, p.Actions)
	}
	if got := b.sb.Calls(doku.OpRefund); got != calls {
		t.Fatalf("refund calls %d -> %d, want none", calls, got)
	}
	if n := len(b.sb.Ledger(t).Refunds); n != 1 {
		t.Fatalf("ledger refunds=%d, want 1", n)
	}
}

// An unbind whose answer is lost is settled by the resolver: the binding's
// authCode no longer buys a customer token, so it is unbound; nothing is
// sent again.
func TestUnbindDroppedAnswerResolved(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	raw, _ := json.Marshal("100000")
	b.sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: "6281234567890", Balance: raw})
	cfg := config()
	cfg.Bindings = []spec.Binding{{Address: "binding.alice", Name: "alice", CustomerID: "cust-1", Phone: "6281234567890",
		SuccessURL: "https://x.test/ok", FailedURL: "https://x.test/fail", DeviceModel: "ddctl", OSType: "android", ChannelID: "web"}}
	res := b.apply(t, b.plan(t, cfg))
	if res.Count(reconcile.ResultSucceeded) != 1 || res.Results[0].Link == "" {
		t.Fatalf("bind: %+v", res.Results)
	}
	if err := b.sb.Server.Confirm(ctx, path.Base(res.Results[0].Link), true); err != nil {
		t.Fatal(err)
	}
	if p := b.plan(t, cfg); p.HasChanges() || p.Converged != 1 {
		t.Fatalf("plan after confirming: %+v", p)
	}

	cfg.Bindings = nil
	cfg.Unbinds = []spec.Unbind{{Address: "unbind.alice", Name: "alice", CustomerID: "cust-1"}}
	p := b.plan(t, cfg)
	if len(p.Actions) != 1 || p.Actions[0].Kind != reconcile.ActionUnbind {
		t.Fatalf("plan with the unbind: %+v", p.Actions)
	}
	b.sb.Server.SetFaults(sandbox.Faults{DropRate: 1, Ops: []string{"unbinding"}})
	if res := b.apply(t, p); res.Count(reconcile.ResultUnknown) != 1 {
		t.Fatalf("unbind under a dropped answer: %+v", res.Results)
	}
	b.sb.Server.SetFaults(sandbox.Faults{})
	p = b.plan(t, cfg)
	if p.HasChanges() || len(p.Resolved) != 1 || p.Resolved[0].Status != state.OpSucceeded {
		t.Fatalf("plan after the drop: resolved %+v, actions %+v", p.Resolved, p.Actions)
	}
	if got := b.sb.Calls(doku.OpUnbinding); got != 1 {
		t.Fatalf("unbinding calls=%d, want 1", got)
	}
	for _, lb := range b.sb.Ledger(t).Bindings {
		if lb.CustIDMerchant == "cust-1" && lb.Status != sandbox.BindingUnbound {
			t.Fatalf("ledger binding %s, want unbound", lb.Status)
		}
	}
}

// gymCharge is a daily charge of IDR 150,000.00 to binding.alice at 09:00
// UTC, an hour before the tests' now, with attempts tries.
func gymCharge(attempts int) []spec.Charge {
	return []spec.Charge{{Address: "recurring_charge.gym", Name: "gym", Binding: "binding.alice", Amount: 15000000,
		Schedule: "0 9 * * *", Start: now.Add(-2 * time.Hour), Description: "Gym", CatchUp: spec.CatchUpLatest,
		Retry: spec.Retry{Attempts: attempts}}}
}

// loseState replaces the state with a new, empty one, into which only
// binding.alice is imported (its authCode kept), and returns it.
func (b *bundle) loseState(t *testing.T) *state.Store {
	t.Helper()
	ctx := context.Background()
	bindings, err := b.store.Bindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Made now: it cannot vouch for what was sent before.
	fresh, err := state.OpenWith(filepath.Join(t.TempDir(), "new.db"), state.OpenOptions{AllowPlaintextSecrets: true,
		NowFunc: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	if err := fresh.PutBinding(ctx, bindings["binding.alice"], now); err != nil {
		t.Fatal(err)
	}
	b.store, b.engine.Store = fresh, fresh
	return fresh
}

// activeBinding binds a customer with balance 1,000,000.00 and confirms:
// cfg gains binding.alice, active.
func (b *bundle) activeBinding(t *testing.T, cfg *spec.Config) {
	t.Helper()
	ctx := context.Background()
	raw, _ := json.Marshal("1000000")
	if _, err := b.sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: "6281234567890", Balance: raw}); err != nil {
		t.Fatal(err)
	}
	cfg.Bindings = []spec.Binding{{Address: "binding.alice", Name: "alice", CustomerID: "cust-1", Phone: "6281234567890",
		SuccessURL: "https://x.test/ok", FailedURL: "https://x.test/fail", DeviceModel: "ddctl", OSType: "android", ChannelID: "web"}}
	res := b.apply(t, b.plan(t, cfg))
	if res.Count(reconcile.ResultSucceeded) != 1 || res.Results[0].Link == "" {
		t.Fatalf("bind: %+v", res.Results)
	}
	if err := b.sb.Server.Confirm(ctx, path.Base(res.Results[0].Link), true); err != nil {
		t.Fatal(err)
	}
}

// A charge request that got no answer (500) and that DOKU has no record of
// is sent again under the same key, byte for byte, with the same
// X-EXTERNAL-ID (the same day); one DOKU answered "try later" (429) goes
// again under the same key with a new X-EXTERNAL-ID, since DOKU would
// replay its answer to the old one.
func TestChargeResend(t *testing.T) {
	for _, tc := range []struct {
		name      string
		faults    sandbox.Faults
		sameExtID bool
	}{
		{"no answer", sandbox.Faults{ErrorRate: 1, Ops: []string{"payment"}}, true},
		{"try later", sandbox.Faults{RateLimitRate: 1, RetryAfter: time.Millisecond, Ops: []string{"payment"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			cfg := config()
			b.activeBinding(t, cfg)
			cfg.Charges = gymCharge(1)
			var bodies, extIDs []string
			b.engine.DOKU = spyDOKU{DOKU: b.client, onPay: func(r doku.PaymentRequest, opts doku.RequestOptions) {
				body, _ := doku.Marshal(r)
				bodies, extIDs = append(bodies, string(body)), append(extIDs, opts.ExternalID)
			}}
			p := b.plan(t, cfg)
			if len(p.Actions) != 1 || p.Actions[0].Kind != reconcile.ActionCharge {
				t.Fatalf("plan: %+v", p.Actions)
			}
			key := p.Actions[0].Key
			b.sb.Server.SetFaults(tc.faults)
			if res := b.apply(t, p); res.Count(reconcile.ResultSucceeded) != 0 {
				t.Fatalf("apply under %s: %+v", tc.name, res.Results)
			}
			b.sb.Server.SetFaults(sandbox.Faults{})
			p = b.plan(t, cfg)
			if len(p.Actions) != 1 || !p.Actions[0].Resend || p.Actions[0].Key != key || p.Actions[0].Attempt != 1 {
				t.Fatalf("plan after %s: %+v, want a resend of attempt 1 under %s", tc.name, p.Actions, key)
			}
			if res := b.apply(t, p); res.Count(reconcile.ResultSucceeded) != 1 {
				t.Fatalf("resend: %+v", res.Results)
			}
			if len(bodies) != 2 || bodies[0] != bodies[1] {
				t.Fatalf("bodies sent:\n%s\nwant two identical", strings.Join(bodies, "\n"))
			}
			if same := extIDs[0] == extIDs[1]; same != tc.sameExtID {
				t.Fatalf("X-EXTERNAL-IDs %v: same=%v, want %v", extIDs, same, tc.sameExtID)
			}
			if l := b.sb.Ledger(t); len(l.Payments) != 1 {
				t.Fatalf("ledger payments=%d, want 1", len(l.Payments))
			}
		})
	}
}

// A refund of a charge occurrence goes in its payer's name: with the
// binding's customer token, which DOKU's SDKs require
// and this sandbox is set to require.
func TestRefundOfChargeCarriesCustomerToken(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	cfg := config()
	b.activeBinding(t, cfg)
	cfg.Charges = gymCharge(1)
	res := b.apply(t, b.plan(t, cfg))
	if res.Count(reconcile.ResultSucceeded) != 1 || res.Results[0].Link == "" {
		t.Fatalf("charge: %+v", res.Results)
	}
	if err := b.sb.Server.Confirm(ctx, path.Base(res.Results[0].Link), true); err != nil {
		t.Fatal(err)
	}
	occ := res.Results[0].Action.Occurrence
	r := spec.Refund{Address: "refund.gym_back", Name: "gym_back", Charge: "recurring_charge.gym", Occurrence: occ, Reason: "goodwill"}
	cfg.Refunds = []spec.Refund{r}
	p := b.plan(t, cfg)
	if len(p.Actions) != 1 || p.Actions[0].Kind != reconcile.ActionRefund || p.Actions[0].Binding != "binding.alice" {
		t.Fatalf("plan: %+v, want one refund in binding.alice's name", p.Actions)
	}
	if res := b.apply(t, p); res.Count(reconcile.ResultSucceeded) != 1 {
		t.Fatalf("refund: %+v", res.Results)
	}
	if l := b.sb.Ledger(t); len(l.Refunds) != 1 {
		t.Fatalf("ledger refunds=%d, want 1", len(l.Refunds))
	}
}

// A state file lost after a charge was paid: the new state cannot vouch
// for the occurrence's keys (it was made after the occurrence), so before
// charging it ddctl asks DOKU under every key the occurrence could have
// used (attempts 1 to 10: retry.attempts may have been higher when it was
// charged), finds the payment and adopts it. No second payment request is
// sent, whether the occurrence is missed or still due.
func TestLostStateAdoptsCharge(t *testing.T) {
	for _, later := range []time.Duration{0, 2 * time.Hour} {
		t.Run(fmt.Sprintf("plan %v after the charge", later), func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			cfg := config()
			b.activeBinding(t, cfg)
			cfg.Charges = gymCharge(3)
			res := b.apply(t, b.plan(t, cfg))
			if res.Count(reconcile.ResultSucceeded) != 1 {
				t.Fatalf("charge: %+v", res.Results)
			}
			if err := b.sb.Server.Confirm(ctx, path.Base(res.Results[0].Link), true); err != nil {
				t.Fatal(err)
			}
			fresh := b.loseState(t)
			payments, statuses := b.sb.Calls(doku.OpPayment), b.sb.Calls(doku.OpStatus)
			p, err := b.engine.Plan(ctx, cfg, reconcile.PlanOptions{At: now.Add(later)})
			if err != nil {
				t.Fatal(err)
			}
			if p.HasChanges() || p.Converged != 2 || len(p.Verified) != 1 {
				t.Fatalf("plan on the new state: actions %+v, converged %d, verified %v; want none, 2 (binding, occurrence), the occurrence",
					p.Actions, p.Converged, p.Verified)
			}
			if got := b.sb.Calls(doku.OpPayment); got != payments {
				t.Fatalf("payment calls %d -> %d, want none", payments, got)
			}
			if got := b.sb.Calls(doku.OpStatus) - statuses; got != spec.MaxRetryAttempts {
				t.Errorf("%d status inquiries, want %d: one per key the occurrence could have used, whatever retry.attempts says now", got, spec.MaxRetryAttempts)
			}
			rows, err := fresh.Charges(ctx)
			if err != nil || len(rows) != 1 || rows[0].Status != state.ChargeSucceeded {
				t.Fatalf("new state's charges: %+v, %v; want the adopted payment", rows, err)
			}
			// The keys DOKU had nothing under are recorded: asked once.
			statuses = b.sb.Calls(doku.OpStatus)
			if p := b.plan(t, cfg); p.HasChanges() || len(p.Verified) != 0 {
				t.Fatalf("second plan: actions %+v, verified %v", p.Actions, p.Verified)
			}
			if got := b.sb.Calls(doku.OpStatus) - statuses; got != 0 {
				t.Errorf("the second plan made %d status inquiries, want 0", got)
			}
		})
	}
}

// A refund goes only with its payer's customer token (docs/doku.md#refund):
// one that names no payer is an error before any call; one whose binding
// awaits its customer waits; one whose binding can give no token is an
// error; an unbind of the binding a refund needs waits for the refund;
// and a binding removed between plan and apply stops the refund at
// apply, unsent.
func TestRefundPayer(t *testing.T) {
	ctx := context.Background()
	setPayer := func(t *testing.T, b *bundle, status state.BindingStatus) {
		t.Helper()
		bs, err := b.store.Bindings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := bs[payerBinding]
		p.Status = status
		if err := b.store.PutBinding(ctx, p, now); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("NoPayer", func(t *testing.T) {
		b := setup(t)
		b.sb.Pay(t, "INV-1", 5000000)
		r := refund("a", "INV-1", 0)
		r.Binding = ""
		p := b.plan(t, config(r))
		if len(p.Actions) != 0 || len(p.Errors) != 1 || p.Errors[0].Summary != "the refund names no payer" {
			t.Fatalf("plan: actions %+v, errors %+v; want the one error", p.Actions, p.Errors)
		}
		if !strings.Contains(p.Errors[0].Detail, "binding = binding.NAME") {
			t.Errorf("the error does not say what to write: %s", p.Errors[0].Detail)
		}
		if n := b.sb.Calls(doku.OpStatus) + b.sb.Calls(doku.OpRefund); n != 0 {
			t.Errorf("%d calls for a refund with no payer, want none", n)
		}
	})
	t.Run("Pending", func(t *testing.T) {
		b := setup(t)
		b.sb.Pay(t, "INV-1", 5000000)
		setPayer(t, b, state.BindingPending)
		// The payer has not confirmed in the sandbox either: the binding
		// made outside is active there, so the exchange is kept away by
		// leaving the binding pending with an authCode DOKU does not know.
		bs, _ := b.store.Bindings(ctx)
		pb := bs[payerBinding]
		pb.AuthCode = secret.New("not-confirmed")
		if err := b.store.PutBinding(ctx, pb, now); err != nil {
			t.Fatal(err)
		}
		p := b.plan(t, config(refund("a", "INV-1", 0)))
		if len(p.Actions) != 0 || len(p.Waiting) != 1 || !strings.Contains(p.Waiting[0].Reason, "waits for binding.payer to become active") {
			t.Fatalf("plan: actions %+v, waiting %+v, errors %+v; want the refund waiting", p.Actions, p.Waiting, p.Errors)
		}
	})
	t.Run("Unbound", func(t *testing.T) {
		b := setup(t)
		b.sb.Pay(t, "INV-1", 5000000)
		setPayer(t, b, state.BindingUnbound)
		p := b.plan(t, config(refund("a", "INV-1", 0)))
		if len(p.Actions) != 0 || len(p.Errors) != 1 || p.Errors[0].Summary != "the payer's binding gives no customer token" {
			t.Fatalf("plan: actions %+v, errors %+v; want the one error", p.Actions, p.Errors)
		}
	})
	t.Run("UnbindWaitsForRefund", func(t *testing.T) {
		b := setup(t)
		b.sb.Pay(t, "INV-1", 5000000)
		cfg := config(refund("a", "INV-1", 0))
		cfg.Unbinds = []spec.Unbind{{Address: "unbind.payer", Name: "payer", CustomerID: sandboxtest.PayerCustomerID}}
		p := b.plan(t, cfg)
		if len(p.Actions) != 1 || p.Actions[0].Kind != reconcile.ActionRefund || len(p.Waiting) != 1 || p.Waiting[0].Address != "unbind.payer" {
			t.Fatalf("plan: actions %+v, waiting %+v; want the refund, and the unbind waiting", p.Actions, p.Waiting)
		}
		if res := b.apply(t, p); res.Count(reconcile.ResultSucceeded) != 1 {
			t.Fatalf("apply: %+v", res.Results)
		}
		p = b.plan(t, cfg)
		if len(p.Actions) != 1 || p.Actions[0].Kind != reconcile.ActionUnbind {
			t.Fatalf("plan after the refund: actions %+v; want the unbind", p.Actions)
		}
	})
	t.Run("GoneBeforeApply", func(t *testing.T) {
		b := setup(t)
		b.sb.Pay(t, "INV-1", 5000000)
		p := b.plan(t, config(refund("a", "INV-1", 0)))
		if len(p.Actions) != 1 {
			t.Fatalf("plan: %+v", p.Actions)
		}
		setPayer(t, b, state.BindingUnbound)
		res := b.apply(t, p)
		if res.Count(reconcile.ResultSkipped) != 1 || !strings.Contains(res.Results[0].Message, "gives no customer token now") {
			t.Fatalf("apply: %+v; want the refund skipped, unsent", res.Results)
		}
		if n := b.sb.Calls(doku.OpRefund); n != 0 {
			t.Errorf("%d refund calls, want none", n)
		}
	})
}
