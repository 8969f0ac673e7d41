package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
)

// The sandbox accepts what DOKU's own material sends, not only what ddctl
// sends: a 14-character partnerReferenceNo (DOKU's Allo notification
// sample, https://dashboard.doku.com/docs/docs/http-notification/sample/direct-debit/allo-direct-debit-http-sample)
// an X-DEVICE-ID with a hyphen (the SDKs bound only its length,
// doku-golang-library models/va/createVa/requestHeaderDTO.go), and osType
// and channelId in capitals.
func TestDocumentedValuesAccepted(t *testing.T) {
	sb := sandboxtest.New(t, pinned)
	custTok := customerSetup(t, sb)
	tok := token(t, sb)

	pay := body(payment("E2E20230811001", "10.00"))
	h := signed(sb, tok, doku.PathPayment, pay, "9100")
	h.Set("Authorization-Customer", "Bearer "+custTok)
	resp, out := sb.Post(t, doku.PathPayment, h, pay)
	if got := code(t, out); got != "2005400" || resp.StatusCode != http.StatusOK {
		t.Fatalf("payment with DOKU's 14-character partnerReferenceNo: HTTP %d %s, want 2005400", resp.StatusCode, out)
	}

	raw, _ := json.Marshal("5000")
	if _, err := sb.Server.PutCustomer(context.Background(), sandbox.NewCustomer{Phone: "6281200000001", Balance: raw}); err != nil {
		t.Fatal(err)
	}
	bind := binding("6281200000001", "android")
	h = signed(sb, tok, doku.PathBinding, bind, "9101")
	h.Set("X-DEVICE-ID", "pixel-7-a1b2")
	resp, out = sb.Post(t, doku.PathBinding, h, bind)
	if got := code(t, out); got != "2000700" || resp.StatusCode != http.StatusOK {
		t.Fatalf("binding with X-DEVICE-ID pixel-7-a1b2: HTTP %d %s, want 2000700", resp.StatusCode, out)
	}

	// osType and channelId as the Go SDK takes them, in any case
	// (doku-golang-library models/directdebit/accountbinding/accountBindingRequestDTO.go).
	bind = body(doku.BindingRequest{PhoneNo: "6281200000001", AdditionalInfo: doku.BindingInfo{Channel: doku.Channel,
		CustIDMerchant: "cust-9", SuccessRegistrationURL: "https://x.test/ok", FailedRegistrationURL: "https://x.test/fail",
		DeviceModel: "iPhone", OSType: "iOS", ChannelID: "APP"}})
	h = signed(sb, tok, doku.PathBinding, bind, "9102")
	h.Set("X-DEVICE-ID", "dev1")
	resp, out = sb.Post(t, doku.PathBinding, h, bind)
	if got := code(t, out); got != "2000700" || resp.StatusCode != http.StatusOK {
		t.Fatalf("binding with osType iOS and channelId APP: HTTP %d %s, want 2000700", resp.StatusCode, out)
	}
}
