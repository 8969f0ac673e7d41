package doku_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/secret"
)

const refundNo = "DDCTLTEST0000000000000000000000001"

func refundReq(payment string, amount money.Amount, partnerRefundNo string) doku.RefundRequest {
	return doku.RefundRequest{
		OriginalPartnerReferenceNo: payment,
		RefundAmount:               doku.NewAmount(amount),
		Reason:                     "item damaged",
		PartnerRefundNo:            partnerRefundNo,
	}
}

func TestRefundAndStatus(t *testing.T) {
	sb := sandboxtest.New(t)
	c := sb.Client(t)
	ctx := context.Background()
	sb.Pay(t, "INV-1001", 15000000)

	st, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1001"}, doku.RequestOptions{})
	if err != nil {
		t.Fatalf("PaymentStatus: %v", err)
	}
	if st.LatestTransactionStatus != doku.TxSuccess || st.TransAmount.Value != "150000.00" || len(st.RefundHistory) != 0 {
		t.Fatalf("status=%s amount=%s refunds=%d, want 00 150000.00 0", st.LatestTransactionStatus, st.TransAmount.Value, len(st.RefundHistory))
	}

	r, err := c.Refund(ctx, refundReq("INV-1001", 15000000, refundNo), doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))})
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	if r.ResponseCode != "2005800" || r.PartnerRefundNo != refundNo || r.RefundNo == "" || r.RefundAmount.Value != "150000.00" {
		t.Fatalf("refund answer %+v", r)
	}

	st, err = c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1001"}, doku.RequestOptions{})
	if err != nil {
		t.Fatalf("PaymentStatus: %v", err)
	}
	if st.LatestTransactionStatus != doku.TxRefunded || len(st.RefundHistory) != 1 || st.RefundHistory[0].PartnerReferenceNo != refundNo {
		t.Fatalf("after refund: status=%s history=%+v", st.LatestTransactionStatus, st.RefundHistory)
	}
	// One token served all three calls.
	if got := sb.Calls(doku.OpTokenB2B); got != 1 {
		t.Fatalf("token requests=%d, want 1", got)
	}
}

func TestRefundFailures(t *testing.T) {
	sb := sandboxtest.New(t)
	c := sb.Client(t)
	ctx := context.Background()
	sb.Pay(t, "INV-2001", 5000000)
	payer := doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))}

	tests := []struct {
		name    string
		req     doku.RefundRequest
		opts    doku.RequestOptions
		code    doku.Code
		outcome doku.Outcome
	}{
		{"UnknownPayment", refundReq("INV-NOPE", 100, refundNo), payer, "4045801", doku.Failed},
		{"PartialUnderFullPolicy", refundReq("INV-2001", 100, refundNo), payer, "4045813", doku.Failed},
		{"ShortRefundNo", refundReq("INV-2001", 5000000, "R-1"), payer, "4005801", doku.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Refund(ctx, tt.req, tt.opts)
			var e *doku.Error
			if !errors.As(err, &e) {
				t.Fatalf("err=%v, want *doku.Error", err)
			}
			if e.Code != tt.code || e.Outcome != tt.outcome {
				t.Fatalf("code=%s outcome=%v, want %s %v (%v)", e.Code, e.Outcome, tt.code, tt.outcome, err)
			}
		})
	}
	if n := len(sb.Ledger(t).Refunds); n != 0 {
		t.Fatalf("ledger holds %d refunds after refused requests, want 0", n)
	}
}

func TestRefundDuplicatesAndReplays(t *testing.T) {
	sb := sandboxtest.New(t)
	c := sb.Client(t)
	ctx := context.Background()
	sb.Pay(t, "INV-3001", 5000000)
	req := refundReq("INV-3001", 5000000, refundNo)
	const extID = "1234567890123456789012"

	if _, err := c.Refund(ctx, req, doku.RequestOptions{ExternalID: extID, AuthCode: secret.New(sb.PayerAuthCode(t))}); err != nil {
		t.Fatalf("Refund: %v", err)
	}
	// The same X-EXTERNAL-ID and body: DOKU replays its answer with HTTP 409,
	// which the client reads as the success it was.
	r, err := c.Refund(ctx, req, doku.RequestOptions{ExternalID: extID, AuthCode: secret.New(sb.PayerAuthCode(t))})
	if err != nil {
		t.Fatalf("replayed Refund: %v", err)
	}
	if r.PartnerRefundNo != refundNo {
		t.Fatalf("replayed answer %+v", r)
	}
	// The same X-EXTERNAL-ID with another body: conflict, outcome unknown.
	other := req
	other.Reason = "other"
	_, err = c.Refund(ctx, other, doku.RequestOptions{ExternalID: extID, AuthCode: secret.New(sb.PayerAuthCode(t))})
	if e := new(doku.Error); !errors.As(err, &e) || e.Code != "4095800" || !e.Unknown() {
		t.Fatalf("same external ID, other body: err=%v, want 4095800 outcome unknown", err)
	}
	// The same partnerRefundNo under a new X-EXTERNAL-ID: duplicate, unknown.
	_, err = c.Refund(ctx, req, doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))})
	if e := new(doku.Error); !errors.As(err, &e) || e.Code != "4095801" || !e.Unknown() {
		t.Fatalf("duplicate partnerRefundNo: err=%v, want 4095801 outcome unknown", err)
	}
	if n := len(sb.Ledger(t).Refunds); n != 1 {
		t.Fatalf("ledger holds %d refunds, want 1", n)
	}
}

func TestStatusNotFound(t *testing.T) {
	sb := sandboxtest.New(t)
	c := sb.Client(t)
	_, err := c.PaymentStatus(context.Background(), doku.StatusRequest{OriginalPartnerReferenceNo: "INV-NONE"}, doku.RequestOptions{})
	var e *doku.Error
	if !errors.As(err, &e) || e.Code != "4045501" || !e.Permanent() {
		t.Fatalf("err=%v, want 4045501 failed", err)
	}
}

func TestConnectionRefusedIsRetryLater(t *testing.T) {
	sb := sandboxtest.New(t)
	cfg := sb.ClientConfig(t)
	sb.HTTP.Close()
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refund(context.Background(), refundReq("INV-1", 100, refundNo), doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))})
	if got := doku.OutcomeOf(err); got != doku.RetryLater {
		t.Fatalf("outcome=%v (%v), want retry later: the request never left", got, err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code doku.Code
		want doku.Outcome
	}{
		{"2005800", doku.Succeeded},
		{"2000700", doku.Succeeded},
		{"2025400", doku.Unknown},
		{"4005801", doku.Failed},
		{"4015800", doku.RetryLater},
		{"4015801", doku.RetryLater},
		{"4015802", doku.RetryLater},
		{"4035414", doku.Failed},
		{"4035413", doku.Unknown}, // OTP sent to cardholder: may still be paid
		{"4045414", doku.Unknown}, // paid bill
		{"4005403", doku.Unknown}, // transaction already success
		{"4045402", doku.Failed},  // invalid routing: refused, but not "not found"
		{"4035404", doku.RetryLater},
		{"4045801", doku.Failed},
		{"4045818", doku.Unknown},
		{"4095800", doku.Unknown},
		{"4095801", doku.Unknown},
		{"4295800", doku.RetryLater},
		{"5005800", doku.Unknown},
		{"5045800", doku.Unknown},
		{"bogus", doku.Unknown},
	}
	for _, tt := range tests {
		if got := doku.Classify(tt.code); got != tt.want {
			t.Errorf("Classify(%s)=%v, want %v", tt.code, got, tt.want)
		}
	}
}

// TestNotFound: only case 01 of HTTP 404 says DOKU has no such
// transaction; other 404s (routing, merchant, terminal) do not.
func TestNotFound(t *testing.T) {
	for code, want := range map[doku.Code]bool{
		"4045501": true, "4045801": true, "4045401": true,
		"4045502": false, "4045508": false, "4045514": false, "4005501": false, "4035501": false, "": false, "bogus": false,
	} {
		if got := code.NotFound(); got != want {
			t.Errorf("Code(%q).NotFound()=%v, want %v", code, got, want)
		}
		err := error(&doku.Error{Op: doku.OpStatus, HTTPStatus: code.HTTPStatus(), Code: code})
		if got := doku.NotFound(fmt.Errorf("wrapped: %w", err)); got != want {
			t.Errorf("NotFound(error with %q)=%v, want %v", code, got, want)
		}
	}
}

// A "retry later" answer (429 with Retry-After) is sent again within the
// call, same X-EXTERNAL-ID, after Retry-After: once DOKU takes requests
// again, the call succeeds in the same run. With retries off, the 429 is
// the call's answer.
func TestRetryLaterWithinCall(t *testing.T) {
	sb := sandboxtest.New(t)
	sb.Pay(t, "INV-1", 5000000)
	ctx := context.Background()
	c := sb.Client(t)
	sb.Server.SetFaults(sandbox.Faults{RateLimitRate: 1, RetryAfter: time.Second, Ops: []string{"status"}})
	go func() {
		time.Sleep(1500 * time.Millisecond) // DOKU takes requests again (a hang would fail on the budget, not here)
		sb.Server.SetFaults(sandbox.Faults{})
	}()
	before := sb.Calls(doku.OpStatus)
	st, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}, doku.RequestOptions{})
	if err != nil || st.LatestTransactionStatus != doku.TxSuccess {
		t.Fatalf("PaymentStatus after 429s: %+v, %v; want the answer", st, err)
	}
	if n := sb.Calls(doku.OpStatus) - before; n < 2 {
		t.Fatalf("%d status requests, want the 429s and the retry", n)
	}

	cfg := sb.ClientConfig(t)
	cfg.RetryBudget = -1
	noRetry, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sb.Server.SetFaults(sandbox.Faults{RateLimitRate: 1, RetryAfter: time.Second, Ops: []string{"status"}})
	_, err = noRetry.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}, doku.RequestOptions{})
	var e *doku.Error
	if !errors.As(err, &e) || e.HTTPStatus != 429 || e.RetryAfter != time.Second {
		t.Fatalf("with retries off: %v, want the 429 with Retry-After 1s", err)
	}
}

// The budget is the run's, not the call's: once the run has waited as
// long as it may, a later call of the same run takes its 429 as the
// answer (the next run sends it again), while a call of a new run
// (Client.NewRun) waits again. Retry-After is 1 s, the budget 1.5 s:
// room for one wait in a run, not two.
func TestRetryBudgetPerRun(t *testing.T) {
	sb := sandboxtest.New(t)
	sb.Pay(t, "INV-1", 5000000)
	cfg := sb.ClientConfig(t)
	cfg.RetryBudget = 1500 * time.Millisecond
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sb.Server.SetFaults(sandbox.Faults{RateLimitRate: 1, RetryAfter: time.Second, Ops: []string{"status"}})
	ask := func(ctx context.Context) int64 {
		t.Helper()
		before := sb.Calls(doku.OpStatus)
		_, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}, doku.RequestOptions{})
		var e *doku.Error
		if !errors.As(err, &e) || e.HTTPStatus != 429 {
			t.Fatalf("PaymentStatus under 429s: %v, want the 429", err)
		}
		return sb.Calls(doku.OpStatus) - before
	}
	run := c.NewRun(context.Background())
	if n := ask(run); n != 2 {
		t.Fatalf("first call of a run: %d requests, want 2 (the 429, and one more after Retry-After)", n)
	}
	if n := ask(run); n != 1 {
		t.Fatalf("second call of the same run: %d requests, want 1: the run's budget has no room for another wait", n)
	}
	if n := ask(c.NewRun(context.Background())); n != 2 {
		t.Fatalf("first call of a new run: %d requests, want 2: a new run has a new budget", n)
	}
	// Without a run of its own, a call spends the budget its client was
	// made with (one process, one run): room for one wait, then none.
	if n := ask(context.Background()); n != 2 {
		t.Fatalf("first call on the client's own budget: %d requests, want 2", n)
	}
	if n := ask(context.Background()); n != 1 {
		t.Fatalf("second call on the client's own budget: %d requests, want 1", n)
	}
}

// A Retry-After longer than the longest single wait is not waited for in
// part: the request would only be refused again. It is left to the next
// run, sent once.
func TestRetryAfterBeyondWaitMax(t *testing.T) {
	sb := sandboxtest.New(t)
	sb.Pay(t, "INV-1", 5000000)
	cfg := sb.ClientConfig(t)
	cfg.RetryWaitMax = time.Second
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sb.Server.SetFaults(sandbox.Faults{RateLimitRate: 1, RetryAfter: 10 * time.Second, Ops: []string{"status"}})
	before := sb.Calls(doku.OpStatus)
	_, err = c.PaymentStatus(context.Background(), doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}, doku.RequestOptions{})
	var e *doku.Error
	if !errors.As(err, &e) || e.HTTPStatus != 429 || e.RetryAfter != 10*time.Second {
		t.Fatalf("PaymentStatus under a 10 s Retry-After: %v, want the 429", err)
	}
	if n := sb.Calls(doku.OpStatus) - before; n != 1 {
		t.Fatalf("%d status requests, want 1: Retry-After is beyond retry_wait_max", n)
	}
}
