package doku_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/secret"
)

// A customer who never answers: the payment fails once it expires, by the
// sandbox's clock.
func TestPaymentExpires(t *testing.T) {
	sb := sandboxtest.New(t, func(c *sandbox.Config) { c.PaymentExpiry = 10 * time.Minute })
	c := sb.Client(t)
	ctx := context.Background()
	auth := bind(t, sb, c, "100000", "cust-1")
	const ref = "DDCTLPAY00000000000000000000000EXP"
	if _, err := c.Pay(ctx, paymentReq(ref, "1000.00"), auth); err != nil {
		t.Fatal(err)
	}
	if err := sb.Server.Advance(ctx, 9*time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: ref}, doku.RequestOptions{}); st.LatestTransactionStatus != doku.TxPending {
		t.Fatalf("status before expiry %s, want pending", st.LatestTransactionStatus)
	}
	if err := sb.Server.Advance(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: ref}, doku.RequestOptions{}); st.LatestTransactionStatus != doku.TxFailed {
		t.Fatalf("status after expiry %s, want failed", st.LatestTransactionStatus)
	}
}

// Auto-approve: the customer says yes after the configured delay.
func TestAutoApprove(t *testing.T) {
	sb := sandboxtest.New(t, func(c *sandbox.Config) { c.AutoApprove = time.Minute })
	c := sb.Client(t)
	ctx := context.Background()
	raw, _ := json.Marshal("100000")
	sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: phone, Balance: raw})
	b, err := c.BindAccount(ctx, bindingReq("cust-1"), doku.RequestOptions{DeviceID: "device1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := sb.Ledger(t).Bindings[0].Status; got != sandbox.BindingPending {
		t.Fatalf("binding %s before the delay, want pending", got)
	}
	// Through the HTTP clock API, as a script would.
	resp, err := http.Post(sb.URL+"/sandbox/clock", "application/json", strings.NewReader(`{"advance": "61s"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /sandbox/clock: %v %v", resp, err)
	}
	if got := sb.Ledger(t).Bindings[0].Status; got != sandbox.BindingActive {
		t.Fatalf("binding %s after the delay, want active", got)
	}
	if _, err := c.Balance(ctx, doku.RequestOptions{AuthCode: secret.New(b.AdditionalInfo.AuthCode)}); err != nil {
		t.Fatalf("balance of an auto-approved binding: %v", err)
	}
}

// X-EXTERNAL-ID is unique within DOKU's day: the next day the same id is
// new again.
func TestExternalIDDayBoundary(t *testing.T) {
	sb := sandboxtest.New(t)
	cfg := sb.ClientConfig(t)
	cfg.NowFunc = sb.Server.Now // the client's clock moves with the sandbox's
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sb.Pay(t, "INV-1", 100)
	req := doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}
	opts := doku.RequestOptions{ExternalID: "123456789"}
	if _, err := c.PaymentStatus(ctx, req, opts); err != nil {
		t.Fatal(err)
	}
	other := doku.StatusRequest{OriginalReferenceNo: sb.Ledger(t).Payments[0].ReferenceNo}
	if _, err := c.PaymentStatus(ctx, other, opts); doku.OutcomeOf(err) == doku.Succeeded {
		t.Fatal("same X-EXTERNAL-ID, other body, same day: accepted")
	}
	sb.Server.Advance(ctx, 24*time.Hour)
	if _, err := c.PaymentStatus(ctx, other, opts); err != nil {
		t.Fatalf("same X-EXTERNAL-ID the next day: %v", err)
	}
}

// The customer token is reused while valid and obtained again once it
// has expired (by the sandbox's clock, which the client shares).
func TestCustomerTokenRenewed(t *testing.T) {
	sb := sandboxtest.New(t, func(c *sandbox.Config) { c.TokenLifetime = 15 * time.Minute })
	cfg := sb.ClientConfig(t)
	cfg.NowFunc = sb.Server.Now
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	auth := bind(t, sb, c, "100000", "cust-1")
	for range 3 {
		if _, err := c.Balance(ctx, auth); err != nil {
			t.Fatal(err)
		}
	}
	if got := sb.Calls(doku.OpTokenB2B2C); got != 1 {
		t.Fatalf("customer tokens=%d after three calls, want 1", got)
	}
	sb.Server.Advance(ctx, 15*time.Minute)
	if _, err := c.Balance(ctx, auth); err != nil {
		t.Fatalf("balance after the token expired: %v", err)
	}
	if got := sb.Calls(doku.OpTokenB2B2C); got != 2 {
		t.Fatalf("customer tokens=%d after expiry, want 2", got)
	}
	if got := sb.Calls(doku.OpTokenB2B); got != 2 {
		t.Fatalf("B2B tokens=%d after expiry, want 2", got)
	}
}
