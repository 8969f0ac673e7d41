package doku_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/secret"
)

// Every client method meets each failure class the sandbox can produce,
// and reports the outcome apply depends on: a 500 or a dropped answer
// leaves a mutating call unknown and a read retryable; a 429 is always
// retryable, and is retried within the call while the run's wait budget
// lasts (here 0.6 s per subtest, each a run: one retry after a 0.4–0.6 s
// backoff). A 500 or a dropped
// answer is never resent by the client on its own: the sandbox counted
// exactly one request.
func TestFailureClasses(t *testing.T) {
	sb := sandboxtest.New(t)
	cfg := sb.ClientConfig(t)
	cfg.RetryBudget = 600 * time.Millisecond
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	auth := bind(t, sb, c, "100000000", "cust-1")
	if _, err := c.Balance(ctx, auth); err != nil { // tokens in hand
		t.Fatal(err)
	}
	n := 0
	next := func() int { n++; return n }
	methods := []struct {
		op   doku.Op
		call func() error
	}{
		{doku.OpBinding, func() error {
			_, err := c.BindAccount(ctx, bindingReq("cust-1"), doku.RequestOptions{DeviceID: "device1"})
			return err
		}},
		{doku.OpBalance, func() error { _, err := c.Balance(ctx, auth); return err }},
		{doku.OpPayment, func() error {
			_, err := c.Pay(ctx, paymentReq(fmt.Sprintf("DDCTLPAY%026d", next()), "10.00"), auth)
			return err
		}},
		{doku.OpStatus, func() error {
			_, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: fmt.Sprintf("DDCTLPAY%026d", 1)}, doku.RequestOptions{})
			return err
		}},
		{doku.OpRefund, func() error {
			ref := fmt.Sprintf("INV-%d", next())
			sb.Pay(t, ref, 100)
			_, err := c.Refund(ctx, refundReq(ref, 100, fmt.Sprintf("DDCTLRFD%026d", n)), doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))})
			return err
		}},
		{doku.OpUnbinding, func() error { _, err := c.Unbind(ctx, auth); return err }},
	}
	// The first payment exists for the status inquiries.
	if err := methods[2].call(); err != nil {
		t.Fatal(err)
	}
	classes := []struct {
		name              string
		faults            sandbox.Faults
		mutating, reading doku.Outcome
		requests          int64 // the sandbox sees
	}{
		{"ServerError", sandbox.Faults{ErrorRate: 1}, doku.Unknown, doku.RetryLater, 1},
		{"RateLimited", sandbox.Faults{RateLimitRate: 1}, doku.RetryLater, doku.RetryLater, 2},
		{"AnswerDropped", sandbox.Faults{DropRate: 1}, doku.Unknown, doku.RetryLater, 1},
	}
	for _, cl := range classes {
		for _, m := range methods {
			t.Run(cl.name+"/"+m.op.String(), func(t *testing.T) {
				f := cl.faults
				f.Ops = []string{m.op.String()}
				sb.Server.SetFaults(f)
				defer sb.Server.SetFaults(sandbox.Faults{})
				ctx = c.NewRun(context.Background())
				before := sb.Calls(m.op)
				err := m.call()
				want := cl.reading
				if m.op.Mutating() {
					want = cl.mutating
				}
				if got := doku.OutcomeOf(err); got != want {
					t.Fatalf("outcome %v (%v), want %v", got, err, want)
				}
				if got := sb.Calls(m.op) - before; got != cl.requests {
					t.Fatalf("the sandbox saw %d requests, want %d", got, cl.requests)
				}
			})
		}
	}
}

func TestCancelledBeforeSendingIsRetryLater(t *testing.T) {
	sb := sandboxtest.New(t)
	c := sb.Client(t)
	sb.Pay(t, "INV-1", 100)
	// A token in hand first, so that the refund itself meets the
	// cancelled context.
	if _, err := c.PaymentStatus(context.Background(), doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}, doku.RequestOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Refund(ctx, refundReq("INV-1", 100, refundNo), doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))})
	if got := doku.OutcomeOf(err); got != doku.RetryLater {
		t.Fatalf("outcome %v (%v), want retry later: nothing was sent", got, err)
	}
	if got := sb.Calls(doku.OpRefund); got != 0 {
		t.Fatalf("refund calls=%d, want 0", got)
	}
}

// The bytes hashed are the bytes sent: compact, no HTML escaping, no
// trailing newline (docs/doku.md#symmetric-signature).
func TestMarshalIsWhatIsSigned(t *testing.T) {
	b, err := doku.Marshal(doku.RefundRequest{OriginalPartnerReferenceNo: "A&B", Reason: "<x> & y", RefundAmount: doku.Amount{Value: "1.00", Currency: "IDR"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"originalPartnerReferenceNo":"A&B","refundAmount":{"value":"1.00","currency":"IDR"},"reason":"<x> & y","partnerRefundNo":"","additionalInfo":{"channel":""}}`
	if string(b) != want {
		t.Fatalf("Marshal=%s\nwant      %s", b, want)
	}
}

// The B2B token is shared by concurrent callers (one fetch) and replaced
// 10 s before it expires, not after.
func TestB2BTokenSharedAndRefreshedEarly(t *testing.T) {
	sb := sandboxtest.New(t)
	cfg := sb.ClientConfig(t)
	cfg.NowFunc = sb.Server.Now
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sb.Pay(t, "INV-1", 100)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}, doku.RequestOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := c.TokensFetched(); got != 1 {
		t.Fatalf("tokens fetched by 8 concurrent calls: %d, want 1", got)
	}
	sb.Server.Advance(ctx, doku.DefaultTokenLifetime-doku.TokenRefreshMargin+time.Second)
	if _, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}, doku.RequestOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := c.TokensFetched(); got != 2 {
		t.Fatalf("tokens fetched 9 s before expiry: %d, want a fresh one (2)", got)
	}
}
