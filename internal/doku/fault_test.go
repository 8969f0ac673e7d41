package doku_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/secret"
)

// The sandbox commits the payment and drops the connection: the client
// reports outcome unknown, and a status inquiry then finds the payment.
func TestDroppedAfterCommitIsUnknown(t *testing.T) {
	sb := sandboxtest.New(t)
	c := sb.Client(t)
	ctx := context.Background()
	auth := bind(t, sb, c, "100000", "cust-1")
	if _, err := c.Balance(ctx, auth); err != nil { // tokens in hand before the fault
		t.Fatal(err)
	}

	sb.Server.SetFaults(sandbox.Faults{DropRate: 1, Ops: []string{"payment"}})
	const ref = "DDCTLPAY0000000000000000000000DROP"
	_, err := c.Pay(ctx, paymentReq(ref, "25000.00"), auth)
	var e *doku.Error
	if !errors.As(err, &e) || !e.Unknown() || e.Code != "" {
		t.Fatalf("dropped payment: err=%v, want outcome unknown with no SNAP code", err)
	}
	sb.Server.SetFaults(sandbox.Faults{})
	st, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: ref}, doku.RequestOptions{})
	if err != nil || st.LatestTransactionStatus != doku.TxPending {
		t.Fatalf("status after the drop: %+v %v; want the payment, pending its customer", st, err)
	}
}

func TestInjectedErrorsClassified(t *testing.T) {
	sb := sandboxtest.New(t)
	cfg := sb.ClientConfig(t)
	cfg.RetryBudget = -1 // the answers' classes, not the retries (TestRetryLaterWithinCall)
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sb.Pay(t, "INV-1", 10000)
	req := refundReq("INV-1", 10000, refundNo)

	sb.Server.SetFaults(sandbox.Faults{RateLimitRate: 1, RetryAfter: 3 * time.Second, Ops: []string{"refund"}})
	_, err = c.Refund(ctx, req, doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))})
	var e *doku.Error
	if !errors.As(err, &e) || e.Code != "4295800" || !e.Retryable() || e.RetryAfter != 3*time.Second {
		t.Fatalf("429: err=%v, want 4295800 retry later after 3s", err)
	}
	sb.Server.SetFaults(sandbox.Faults{ErrorRate: 1, Ops: []string{"refund"}})
	_, err = c.Refund(ctx, req, doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))})
	if !errors.As(err, &e) || e.Code != "5005800" || !e.Unknown() {
		t.Fatalf("500: err=%v, want 5005800 outcome unknown", err)
	}
	if n := len(sb.Ledger(t).Refunds); n != 0 {
		t.Fatalf("ledger refunds=%d after faults before processing, want 0", n)
	}
	sb.Server.SetFaults(sandbox.Faults{Latency: 30 * time.Millisecond})
	if _, err := c.Refund(ctx, req, doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))}); err != nil {
		t.Fatalf("refund under latency: %v", err)
	}
}
