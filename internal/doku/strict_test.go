package doku_test

import (
	"context"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
)

// The client sends what the strictest reading of DOKU's SDKs requires: a
// sandbox that makes CHANNEL-ID mandatory on payments, X-DEVICE-ID and
// Authorization-Customer on refunds, payOptionDetails on payments and
// serviceCode 55 on status inquiries takes every call of a client given a
// device ID, a binding's authCode, and a payment with its payOptionDetails
// (as the reconciler builds it).
func TestClientMeetsStrictestReadings(t *testing.T) {
	at := time.Date(2026, 11, 23, 3, 15, 30, 0, time.UTC)
	sb := sandboxtest.New(t, func(c *sandbox.Config) {
		c.NowFunc = func() time.Time { return at }
		c.PaymentNeedsChannelID, c.RefundNeedsDeviceID, c.PayOptionDetailsRequired = true, true, true
		c.StatusServiceCode = doku.StatusServiceCode // the customer token on refunds is the default
	})
	cfg := sb.ClientConfig(t)
	cfg.DeviceID = "device1"
	cfg.NowFunc = func() time.Time { return at }
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	auth := bind(t, sb, c, "100000", "cust-1")
	if _, err := c.Balance(ctx, auth); err != nil {
		t.Fatalf("Balance: %v", err)
	}
	const ref = "DDCTLPAY00000000000000000000000001"
	req := paymentReq(ref, "5000.00")
	req.PayOptionDetails = []doku.PayOption{{PayMethod: "BALANCE", TransAmount: req.Amount, FeeAmount: doku.NewAmount(0)}}
	p, err := c.Pay(ctx, req, auth)
	if err != nil {
		t.Fatalf("Pay: %v", err)
	}
	if err := sb.Server.Confirm(ctx, confirmationID(p.WebRedirectURL), true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refund(ctx, refundReq(ref, 500000, refundNo), auth); err != nil {
		t.Fatalf("Refund: %v", err)
	}
	st, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: ref}, doku.RequestOptions{})
	if err != nil {
		t.Fatalf("PaymentStatus: %v", err)
	}
	if st.LatestTransactionStatus != doku.TxRefunded {
		t.Fatalf("status %s after a full refund, want %s", st.LatestTransactionStatus, doku.TxRefunded)
	}
	if _, err := c.Unbind(ctx, auth); err != nil {
		t.Fatalf("Unbind: %v", err)
	}
}
