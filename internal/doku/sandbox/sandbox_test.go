package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
)

const timestamp = "2026-11-23T10:15:30+07:00"

// token obtains a B2B token from the sandbox with a correctly signed request.
func token(t *testing.T, sb *sandboxtest.Env) string {
	t.Helper()
	key, err := doku.LoadPrivateKey(filepath.Join(sb.Dir, "merchant.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := doku.SignAsymmetric(key, sb.Config.ClientID, timestamp)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-CLIENT-KEY", sb.Config.ClientID)
	h.Set("X-TIMESTAMP", timestamp)
	h.Set("X-SIGNATURE", sig)
	resp, body := sb.Post(t, doku.PathTokenB2B, h, []byte(`{"grantType":"client_credentials"}`))
	var tr doku.TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || resp.StatusCode != 200 || tr.AccessToken == "" {
		t.Fatalf("token: HTTP %d %s", resp.StatusCode, body)
	}
	return tr.AccessToken
}

// signed builds the headers of a correctly signed transactional request.
func signed(sb *sandboxtest.Env, tok, path string, body []byte, extID string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Bearer "+tok)
	h.Set("X-TIMESTAMP", timestamp)
	h.Set("X-PARTNER-ID", sb.Config.ClientID)
	h.Set("X-EXTERNAL-ID", extID)
	h.Set("X-IP-ADDRESS", "10.20.30.40")
	h.Set("X-SIGNATURE", doku.SignSymmetric(sb.Config.ClientSecret.Reveal(), "POST", path, tok, body, timestamp))
	return h
}

func code(t *testing.T, body []byte) doku.Code {
	t.Helper()
	var r doku.Result
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	return r.ResponseCode
}

func refundBody(payment, amount string) []byte {
	b, _ := doku.Marshal(doku.RefundRequest{
		OriginalPartnerReferenceNo: payment,
		RefundAmount:               doku.Amount{Value: amount, Currency: "IDR"},
		PartnerRefundNo:            "DDCTLTEST0000000000000000000000001",
		AdditionalInfo:             doku.ChannelInfo{Channel: doku.Channel},
	})
	return b
}

func TestTamperedSignatureRefused(t *testing.T) {
	sb := sandboxtest.New(t)
	sb.Pay(t, "INV-1", 10000)
	tok := token(t, sb)
	body := refundBody("INV-1", "100.00")
	h := signed(sb, tok, doku.PathRefund, body, "1001")

	// The body changes after signing: 50,000 instead of 100.
	tampered := refundBody("INV-1", "50000.00")
	resp, out := sb.Post(t, doku.PathRefund, h, tampered)
	if resp.StatusCode != 401 || code(t, out) != "4015800" {
		t.Fatalf("tampered body: HTTP %d %s, want 401 4015800", resp.StatusCode, out)
	}
	// A signature with one character changed.
	h2 := signed(sb, tok, doku.PathRefund, body, "1002")
	sig := []byte(h2.Get("X-SIGNATURE"))
	sig[5] ^= 1
	h2.Set("X-SIGNATURE", string(sig))
	resp, out = sb.Post(t, doku.PathRefund, h2, body)
	if resp.StatusCode != 401 || code(t, out) != "4015800" {
		t.Fatalf("tampered signature: HTTP %d %s, want 401 4015800", resp.StatusCode, out)
	}
	if n := len(sb.Ledger(t).Refunds); n != 0 {
		t.Fatalf("ledger holds %d refunds, want 0", n)
	}
	// The untouched request goes through, so the refusals above were the
	// signature's doing.
	resp, out = sb.Post(t, doku.PathRefund, signed(sb, tok, doku.PathRefund, body, "1003"), body)
	if c := code(t, out); c != "2005800" {
		t.Fatalf("untampered refund: HTTP %d %s, want 2005800", resp.StatusCode, out)
	}
	if n := len(sb.Ledger(t).Refunds); n != 1 {
		t.Fatalf("ledger holds %d refunds, want 1", n)
	}
	if got := sb.Calls(doku.OpRefund); got != 3 {
		t.Fatalf("refund calls counted=%d, want 3", got)
	}
}

func TestRejections(t *testing.T) {
	sb := sandboxtest.New(t)
	sb.Pay(t, "INV-1", 10000)
	tok := token(t, sb)
	full := refundBody("INV-1", "100.00")

	tests := []struct {
		name   string
		path   string
		body   []byte
		mutate func(h http.Header)
		want   doku.Code
	}{
		{"MissingExternalID", doku.PathRefund, full, func(h http.Header) { h.Del("X-EXTERNAL-ID") }, "4005802"},
		{"MissingIPAddress", doku.PathRefund, full, func(h http.Header) { h.Del("X-IP-ADDRESS") }, "4005802"},
		{"ShortIPAddress", doku.PathRefund, full, func(h http.Header) { h.Set("X-IP-ADDRESS", "10.0.0.1") }, "4005801"},
		{"NonNumericExternalID", doku.PathRefund, full, func(h http.Header) { h.Set("X-EXTERNAL-ID", "abc") }, "4005801"},
		{"UnknownPartner", doku.PathRefund, full, func(h http.Header) { h.Set("X-PARTNER-ID", "BRN-OTHER") }, "4015800"},
		{"NoBearer", doku.PathRefund, full, func(h http.Header) { h.Del("Authorization") }, "4015803"},
		{"ForgedToken", doku.PathRefund, full, nil, "4015801"},
		{"UnknownPayment", doku.PathRefund, refundBody("INV-404", "100.00"), nil, "4045801"},
		{"AmountWithoutDecimals", doku.PathRefund, refundBody("INV-1", "100"), nil, "4005801"},
		{"StatusUnknownPayment", doku.PathStatus, []byte(`{"originalPartnerReferenceNo":"INV-404","serviceCode":"55","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`), nil, "4045501"},
		{"StatusBadServiceCode", doku.PathStatus, []byte(`{"originalPartnerReferenceNo":"INV-1","serviceCode":"99","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`), nil, "4005501"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			useTok := tok
			if tt.name == "ForgedToken" {
				useTok = tok[:len(tok)-4] + "AAAA"
			}
			h := signed(sb, useTok, tt.path, tt.body, strconv.Itoa(7700+i))
			if tt.mutate != nil {
				tt.mutate(h)
			}
			resp, out := sb.Post(t, tt.path, h, tt.body)
			if got := code(t, out); got != tt.want || resp.StatusCode != got.HTTPStatus() {
				t.Fatalf("HTTP %d %s, want %s", resp.StatusCode, out, tt.want)
			}
		})
	}
}

func TestTokenRequestRefusedWithBadSignature(t *testing.T) {
	sb := sandboxtest.New(t)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-CLIENT-KEY", sb.Config.ClientID)
	h.Set("X-TIMESTAMP", timestamp)
	h.Set("X-SIGNATURE", "bm90IGEgc2lnbmF0dXJl")
	resp, out := sb.Post(t, doku.PathTokenB2B, h, []byte(`{"grantType":"client_credentials"}`))
	if resp.StatusCode != 401 || code(t, out) != "4017300" {
		t.Fatalf("HTTP %d %s, want 401 4017300", resp.StatusCode, out)
	}
}

func TestLedgerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sandboxtest.WriteKeys(t, dir)
	cfg, err := sandbox.PrepareDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sandbox.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := srv.CreatePayment(ctx, sandbox.NewPayment{PartnerReferenceNo: "INV-9", Amount: json.RawMessage(`"1.50"`), Phone: "6281234567890"}); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	cfg2, err := sandbox.PrepareDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg2.ClientID != cfg.ClientID || cfg2.ClientSecret.Reveal() != cfg.ClientSecret.Reveal() {
		t.Fatal("credentials changed across restarts")
	}
	srv2, err := sandbox.Open(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	l, err := srv2.Ledger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Payments) != 1 || l.Payments[0].PartnerReferenceNo != "INV-9" || l.Payments[0].Amount != 150 {
		t.Fatalf("ledger after restart: %+v", l.Payments)
	}
}
