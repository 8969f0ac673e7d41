package reconcile_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
)

// savedPlan is a plan with a bind (a phone number) and a refund, saved
// under key.
func savedPlan(t *testing.T, key []byte) (*reconcile.Plan, []byte) {
	t.Helper()
	p := &reconcile.Plan{FormatVersion: reconcile.FormatVersion, CreatedAt: time.Unix(1_800_000_000, 0).UTC(), Lineage: "L", Serial: 3,
		Actions: []reconcile.Action{
			{Kind: reconcile.ActionBind, Address: "binding.alice", CustomerID: "cust-1", Phone: "6281234567890", Key: "BIND-1",
				BindRequest: &reconcile.BindRequest{SuccessURL: "https://example.com/ok", FailedURL: "https://example.com/no"}},
			{Kind: reconcile.ActionRefund, Address: "refund.r1", Payment: "INV-1", Amount: 1000000, Key: "R-1"},
		}}
	var buf bytes.Buffer
	if err := reconcile.WritePlan(&buf, p, key); err != nil {
		t.Fatal(err)
	}
	return p, buf.Bytes()
}

func readPlan(t *testing.T, b []byte) *reconcile.PlanFile {
	t.Helper()
	f, err := reconcile.ReadPlan(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("ReadPlan: %v", err)
	}
	return f
}

// A saved plan is signed: every edit of it (an action added, an amount
// changed, a key changed, a byte of white space in the plan) fails Verify, and so do
// another key and a missing signature. Phone numbers are not in it.
func TestPlanFileSigned(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	_, file := savedPlan(t, key)
	if err := readPlan(t, file).Verify(key, false); err != nil {
		t.Fatalf("the plan as saved: %v", err)
	}
	if bytes.Contains(file, []byte("6281234567890")) {
		t.Errorf("the plan file holds the full phone number:\n%s", file)
	}
	injected := `{"kind":"refund","address":"refund.injected","payment":"INV-6666","amount":99900000,"idempotency_key":"X-1"},
    {
      "kind": "refund",
      "address": "refund.r1"`
	for name, edit := range map[string]func(string) string{
		"injected refund": func(s string) string {
			return strings.Replace(s, "{\n      \"kind\": \"refund\",\n      \"address\": \"refund.r1\"", injected, 1)
		},
		"amount":      func(s string) string { return strings.Replace(s, `"amount": 1000000`, `"amount": 100000000`, 1) },
		"key":         func(s string) string { return strings.Replace(s, `"R-1"`, `"R-2"`, 1) },
		"white space": func(s string) string { return strings.Replace(s, `"lineage": "L"`, `"lineage":  "L"`, 1) },
	} {
		edited := edit(string(file))
		if edited == string(file) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		f, err := reconcile.ReadPlan(strings.NewReader(edited))
		if err != nil {
			t.Fatalf("%s: ReadPlan: %v", name, err)
		}
		if err := f.Verify(key, false); !errors.Is(err, reconcile.ErrPlanSignature) {
			t.Errorf("%s: Verify = %v, want %v", name, err, reconcile.ErrPlanSignature)
		}
	}
	if err := readPlan(t, file).Verify(bytes.Repeat([]byte{2}, 32), false); !errors.Is(err, reconcile.ErrPlanSignature) {
		t.Errorf("another key: Verify = %v, want %v", err, reconcile.ErrPlanSignature)
	}
	if err := readPlan(t, file).Verify(nil, true); err == nil {
		t.Error("a signed plan passed without a key to check it")
	}

	_, unsigned := savedPlan(t, nil)
	if err := readPlan(t, unsigned).Verify(key, false); !errors.Is(err, reconcile.ErrPlanUnsigned) {
		t.Errorf("unsigned, with a key: Verify = %v, want %v", err, reconcile.ErrPlanUnsigned)
	}
	if err := readPlan(t, unsigned).Verify(nil, false); !errors.Is(err, reconcile.ErrPlanUnsigned) {
		t.Errorf("unsigned, no key, not a simulator: Verify = %v, want %v", err, reconcile.ErrPlanUnsigned)
	}
	if err := readPlan(t, unsigned).Verify(nil, true); err != nil {
		t.Errorf("unsigned, a local simulator's state: Verify = %v, want nil", err)
	}
	// An unsigned plan claiming a signature it does not have.
	forged := strings.Replace(string(unsigned), `"signature":""`, `"signature":"hmac-sha256:`+strings.Repeat("00", 32)+`"`, 1)
	if err := readPlan(t, []byte(forged)).Verify(key, false); !errors.Is(err, reconcile.ErrPlanSignature) {
		t.Errorf("a made-up signature: Verify = %v, want %v", err, reconcile.ErrPlanSignature)
	}
}

// Apply takes a bind's phone number from the configuration, which must
// mask to the one the plan shows (the spec digest, which CheckFresh
// compares, ties the plan to the whole configuration).
func TestPlanFileFillPhones(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	want, file := savedPlan(t, key)
	cfg := &spec.Config{Bindings: []spec.Binding{{Address: "binding.alice", Phone: "6281234567890"}}}
	p := readPlan(t, file).Plan
	if err := p.FillPhones(cfg); err != nil {
		t.Fatal(err)
	}
	if got := p.Actions[0].Phone; got != want.Actions[0].Phone {
		t.Fatalf("phone %q, want %q", got, want.Actions[0].Phone)
	}
	cfg.Bindings[0].Phone = "6285550001111"
	if err := readPlan(t, file).Plan.FillPhones(cfg); err == nil {
		t.Fatal("a phone number other than the plan's was taken")
	}
}

// CheckReviewed refuses a plan with a call the reviewed plan did not show
// (another address, kind, amount or payment) or from another
// configuration, and takes one with fewer calls.
func TestCheckReviewed(t *testing.T) {
	reviewed := &reconcile.Plan{FormatVersion: reconcile.FormatVersion, SpecDigest: "D1", Actions: []reconcile.Action{
		{Kind: reconcile.ActionRefund, Address: "refund.r1", Payment: "INV-1", Amount: 1000000, Key: "R-1"},
		{Kind: reconcile.ActionCharge, Address: "recurring_charge.gym#2026-12-01T09:00+07:00", Amount: 15000000, Key: "C-1"},
	}}
	var buf bytes.Buffer
	if err := reconcile.RenderJSON(&buf, reviewed, reconcile.RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	rv, err := reconcile.ReadReviewed(&buf)
	if err != nil {
		t.Fatal(err)
	}
	plan := func(digest string, actions ...reconcile.Action) *reconcile.Plan {
		return &reconcile.Plan{SpecDigest: digest, Actions: actions}
	}
	r1, gym := reviewed.Actions[0], reviewed.Actions[1]
	if err := plan("D1", r1, gym).CheckReviewed(rv); err != nil {
		t.Errorf("the reviewed calls: %v", err)
	}
	if err := plan("D1", r1).CheckReviewed(rv); err != nil {
		t.Errorf("fewer calls (the charge deferred): %v", err)
	}
	more := r1
	more.Amount = 100000000
	other := r1
	other.Payment = "INV-6666"
	injected := reconcile.Action{Kind: reconcile.ActionRefund, Address: "refund.injected", Payment: "INV-6666", Amount: 99900000}
	for name, p := range map[string]*reconcile.Plan{
		"another configuration": plan("D2", r1),
		"an unreviewed call":    plan("D1", r1, injected),
		"another amount":        plan("D1", more),
		"another payment":       plan("D1", other),
	} {
		if err := p.CheckReviewed(rv); err == nil {
			t.Errorf("%s: taken", name)
		}
	}
}
