package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
)

// Each UNCONFIRMED setting of sandbox.Config, switched from its default,
// changes the answer it names; and each check added with it fails without
// it.

// pinned is the clock of these tests: the instant of the timestamp
// constant their requests carry.
func pinned(c *sandbox.Config) {
	at, _ := time.Parse(time.RFC3339, timestamp)
	c.NowFunc = func() time.Time { return at }
}

// post sends body to p with signed headers, X-DEVICE-ID and, when cust is
// set, Authorization-Customer, and returns the HTTP status and responseCode.
func post(t *testing.T, sb *sandboxtest.Env, tok, p string, b []byte, extID, cust string, mutate ...func(http.Header)) (int, doku.Code, []byte) {
	t.Helper()
	h := signed(sb, tok, p, b, extID)
	h.Set("X-DEVICE-ID", "dev1")
	if cust != "" {
		h.Set("Authorization-Customer", "Bearer "+cust)
	}
	for _, m := range mutate {
		m(h)
	}
	resp, out := sb.Post(t, p, h, b)
	return resp.StatusCode, code(t, out), out
}

// pendingAuthCode starts a binding nobody confirms and returns its authCode.
func pendingAuthCode(t *testing.T, sb *sandboxtest.Env, tok string) string {
	t.Helper()
	raw, _ := json.Marshal("5000")
	if _, err := sb.Server.PutCustomer(context.Background(), sandbox.NewCustomer{Phone: "6281200000002", Balance: raw}); err != nil {
		t.Fatal(err)
	}
	st, c, out := post(t, sb, tok, doku.PathBinding, binding("6281200000002", "android"), "9300", "")
	if c != "2000700" {
		t.Fatalf("binding: HTTP %d %s", st, out)
	}
	var br doku.BindingResponse
	if err := json.Unmarshal(out, &br); err != nil {
		t.Fatal(err)
	}
	return br.AdditionalInfo.AuthCode
}

// exchange asks for the customer token of authCode.
func exchange(t *testing.T, sb *sandboxtest.Env, authCode string) (doku.Code, string) {
	t.Helper()
	key, err := doku.LoadPrivateKey(filepath.Join(sb.Dir, "merchant.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := doku.SignAsymmetric(key, sb.Config.ClientID, timestamp)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-CLIENT-KEY", sb.Config.ClientID)
	h.Set("X-TIMESTAMP", timestamp)
	h.Set("X-SIGNATURE", sig)
	_, out := sb.Post(t, doku.PathTokenB2B2C, h, []byte(`{"grantType":"authorization_code","authCode":"`+authCode+`"}`))
	var tr doku.B2B2CTokenResponse
	json.Unmarshal(out, &tr)
	return tr.ResponseCode, tr.AccessToken
}

func TestExchangeAnyBinding(t *testing.T) {
	sb := sandboxtest.New(t, pinned)
	if c, _ := exchange(t, sb, pendingAuthCode(t, sb, token(t, sb))); c != "4037418" {
		t.Fatalf("default: exchange for a pending binding answered %s, want 4037418", c)
	}

	sb = sandboxtest.New(t, pinned, func(c *sandbox.Config) { c.ExchangeAnyBinding = true })
	tok := token(t, sb)
	c, cust := exchange(t, sb, pendingAuthCode(t, sb, tok))
	if c != "2007400" || cust == "" {
		t.Fatalf("ExchangeAnyBinding: exchange for a pending binding answered %s, want 2007400 and a token", c)
	}
	if st, c, out := post(t, sb, tok, doku.PathBalance, []byte(`{"additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`), "9301", cust); c != "4011102" {
		t.Fatalf("balance with a pending binding's token: HTTP %d %s, want 4011102", st, out)
	}
}

func TestRefundCaseCodes(t *testing.T) {
	sb := sandboxtest.New(t, pinned, tokenOptional, func(c *sandbox.Config) { c.RefundAmountCase, c.RefundNotPermittedCase = "27", "28" })
	sb.Pay(t, "INV-1", 10000)
	tok := token(t, sb)
	if st, c, out := post(t, sb, tok, doku.PathRefund, refundBody("INV-1", "1.00"), "9400", ""); c != "4045827" {
		t.Fatalf("partial refund under the full policy: HTTP %d %s, want the configured 4045827", st, out)
	}
	if st, c, out := post(t, sb, tok, doku.PathRefund, refundBody("INV-1", "100.00"), "9401", ""); c != "2005800" {
		t.Fatalf("full refund: HTTP %d %s", st, out)
	}
	again := body(doku.RefundRequest{OriginalPartnerReferenceNo: "INV-1", RefundAmount: doku.Amount{Value: "100.00", Currency: "IDR"},
		PartnerRefundNo: "DDCTLRFD00000000000000000000000002", AdditionalInfo: doku.ChannelInfo{Channel: doku.Channel}})
	if st, c, out := post(t, sb, tok, doku.PathRefund, again, "9402", ""); c != "4035828" {
		t.Fatalf("second refund of a refunded payment: HTTP %d %s, want the configured 4035828", st, out)
	}
}

func TestStatusServiceCode(t *testing.T) {
	status := func(sc string) []byte {
		return []byte(`{"originalPartnerReferenceNo":"INV-1","serviceCode":"` + sc + `","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`)
	}
	sb := sandboxtest.New(t, pinned)
	sb.Pay(t, "INV-1", 100)
	tok := token(t, sb)
	for i, sc := range []string{"54", "55"} {
		if st, c, out := post(t, sb, tok, doku.PathStatus, status(sc), "950"+string(rune('0'+i)), ""); c != "2005500" {
			t.Fatalf("default: serviceCode %s: HTTP %d %s, want 2005500", sc, st, out)
		}
	}
	sb = sandboxtest.New(t, pinned, func(c *sandbox.Config) { c.StatusServiceCode = "55" })
	sb.Pay(t, "INV-1", 100)
	tok = token(t, sb)
	if st, c, out := post(t, sb, tok, doku.PathStatus, status("54"), "9510", ""); c != "4005501" {
		t.Fatalf("StatusServiceCode 55: serviceCode 54: HTTP %d %s, want 4005501", st, out)
	}
	if _, err := sandbox.Open(sandbox.Config{StatusServiceCode: "99"}); err == nil {
		t.Fatal("Open accepted status service code 99")
	}
}

// The same X-EXTERNAL-ID an hour apart, across midnight in Jakarta but not
// in UTC: a new request by default, a replay (409) when the day is UTC's.
func TestExternalIDZone(t *testing.T) {
	start := time.Date(2026, 11, 23, 16, 30, 0, 0, time.UTC) // 23:30 WIB
	for _, tc := range []struct {
		name string
		zone *time.Location
		want int
	}{{"default (WIB)", nil, http.StatusOK}, {"UTC", time.UTC, http.StatusConflict}} {
		sb := sandboxtest.New(t, pinned, func(c *sandbox.Config) {
			c.NowFunc = func() time.Time { return start }
			c.ExternalIDZone = tc.zone
		})
		sb.Pay(t, "INV-1", 100)
		b := []byte(`{"originalPartnerReferenceNo":"INV-1","serviceCode":"55","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`)
		if st, _, out := post(t, sb, token(t, sb), doku.PathStatus, b, "9600", ""); st != http.StatusOK {
			t.Fatalf("first status: HTTP %d %s", st, out)
		}
		sb.Server.Advance(context.Background(), time.Hour)
		if st, _, out := post(t, sb, token(t, sb), doku.PathStatus, b, "9600", ""); st != tc.want {
			t.Fatalf("zone %s: the same X-EXTERNAL-ID an hour later, past midnight WIB: HTTP %d %s, want %d", tc.name, st, out, tc.want)
		}
	}
}

func TestPaymentHeadersAndPayOptions(t *testing.T) {
	sb := sandboxtest.New(t, pinned, func(c *sandbox.Config) {
		c.PaymentNeedsChannelID, c.PayOptionDetailsRequired = true, true
	})
	cust := customerSetup(t, sb)
	tok := token(t, sb)
	p := payment("DDCTLPAY00000000000000000000000070", "10.00")
	p.PayOptionDetails = nil
	if st, c, out := post(t, sb, tok, doku.PathPayment, body(p), "9700", cust, func(h http.Header) { h.Set("CHANNEL-ID", "DH") }); c != "4005402" {
		t.Fatalf("PayOptionDetailsRequired: payment without payOptionDetails: HTTP %d %s, want 4005402", st, out)
	}
	p = payment("DDCTLPAY00000000000000000000000070", "10.00")
	if st, c, out := post(t, sb, tok, doku.PathPayment, body(p), "9701", cust); c != "4005402" {
		t.Fatalf("PaymentNeedsChannelID: payment without CHANNEL-ID: HTTP %d %s, want 4005402", st, out)
	}
	if st, c, out := post(t, sb, tok, doku.PathPayment, body(p), "9702", cust, func(h http.Header) { h.Set("CHANNEL-ID", "DH") }); c != "2005400" {
		t.Fatalf("payment with CHANNEL-ID and payOptionDetails: HTTP %d %s, want 2005400", st, out)
	}

	sb = sandboxtest.New(t, pinned, tokenOptional, func(c *sandbox.Config) { c.RefundNeedsDeviceID = true })
	sb.Pay(t, "INV-1", 10000)
	tok = token(t, sb)
	if st, c, out := post(t, sb, tok, doku.PathRefund, refundBody("INV-1", "100.00"), "9703", "", func(h http.Header) { h.Del("X-DEVICE-ID") }); c != "4005802" {
		t.Fatalf("RefundNeedsDeviceID: refund without X-DEVICE-ID: HTTP %d %s, want 4005802", st, out)
	}
	if st, c, out := post(t, sb, tok, doku.PathRefund, refundBody("INV-1", "100.00"), "9704", ""); c != "2005800" {
		t.Fatalf("RefundNeedsDeviceID: refund with X-DEVICE-ID: HTTP %d %s, want 2005800", st, out)
	}
}
