package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
)

// A late commit: the sandbox holds the refund past the client's timeout,
// so the client reports outcome unknown and a status inquiry right after
// finds no refund; then the refund is made all the same, once.
func TestLateCommit(t *testing.T) {
	sb := sandboxtest.New(t, tokenOptional)
	sb.Pay(t, "INV-LATE", 10000)
	cfg := sb.ClientConfig(t)
	cfg.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond}
	c, err := doku.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	status := func() *doku.StatusResponse {
		t.Helper()
		st, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-LATE"}, doku.RequestOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	status() // the B2B token in hand before the fault

	sb.Server.SetFaults(sandbox.Faults{LateRate: 1, LateDelay: 400 * time.Millisecond, Ops: []string{"refund"}})
	const refundNo = "DDCTLREF00000000000000000000000LATE"
	_, err = c.Refund(ctx, doku.RefundRequest{OriginalPartnerReferenceNo: "INV-LATE", RefundAmount: doku.NewAmount(10000),
		PartnerRefundNo: refundNo, Reason: "late"}, doku.RequestOptions{})
	var e *doku.Error
	if !errors.As(err, &e) || !e.Unknown() || e.Code != "" {
		t.Fatalf("late refund: err=%v, want outcome unknown with no SNAP code (the client gave up)", err)
	}
	if st := status(); len(st.RefundHistory) != 0 {
		t.Fatalf("status right after the timeout lists refunds %+v; the late commit should not have happened yet", st.RefundHistory)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(sb.Ledger(t).Refunds) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the late refund never reached the ledger")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rs := sb.Ledger(t).Refunds; len(rs) != 1 || rs[0].PartnerRefundNo != refundNo {
		t.Fatalf("ledger refunds %+v, want exactly the late one", rs)
	}
	if got := sb.Server.FaultsInjected(); got["late"] != 1 || got["error"]+got["drop"]+got["rate_limit"] != 0 {
		t.Fatalf("FaultsInjected() = %v, want late=1 and no other", got)
	}
}

// The late-commit fields go through POST /sandbox/faults as the others do.
func TestFaultsAPILate(t *testing.T) {
	sb := sandboxtest.New(t)
	resp, err := http.Post(sb.URL+"/sandbox/faults", "application/json",
		strings.NewReader(`{"late_rate": 0.1, "late_delay": "1.5s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || got["late_rate"] != 0.1 || got["late_delay"] != "1.5s" {
		t.Fatalf("HTTP %d %v", resp.StatusCode, got)
	}
	resp, _ = http.Post(sb.URL+"/sandbox/faults", "application/json", strings.NewReader(`{"late_delay": "-1s"}`))
	if resp.StatusCode != 400 {
		t.Fatalf("negative late_delay: HTTP %d, want 400", resp.StatusCode)
	}
}
