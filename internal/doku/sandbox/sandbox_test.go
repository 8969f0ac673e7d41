package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/secret"
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
	sb := sandboxtest.New(t, tokenOptional)
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

// customerSetup binds a customer with 100,000 in the sandbox, pays once and
// refunds INV-2 fully, and returns a raw customer token.
func customerSetup(t *testing.T, sb *sandboxtest.Env) (custToken string) {
	t.Helper()
	ctx := context.Background()
	c := sb.Client(t)
	raw, _ := json.Marshal("100000")
	if _, err := sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: "6281298765432", Balance: raw}); err != nil {
		t.Fatal(err)
	}
	b, err := c.BindAccount(ctx, doku.BindingRequest{PhoneNo: "6281298765432", AdditionalInfo: doku.BindingInfo{
		CustIDMerchant: "cust-1", SuccessRegistrationURL: "https://x.test/ok", FailedRegistrationURL: "https://x.test/fail",
		DeviceModel: "Pixel", OSType: "android", ChannelID: "app"}}, doku.RequestOptions{DeviceID: "dev1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Server.Confirm(ctx, path.Base(b.RedirectURL), true); err != nil {
		t.Fatal(err)
	}
	auth := doku.RequestOptions{AuthCode: secret.New(b.AdditionalInfo.AuthCode)}
	if _, err := c.Pay(ctx, payment(dupPaymentRef, "1000.00"), auth); err != nil {
		t.Fatal(err)
	}
	sb.Pay(t, "INV-2", 10000)
	if _, err := c.Refund(ctx, doku.RefundRequest{OriginalPartnerReferenceNo: "INV-2", RefundAmount: doku.Amount{Value: "100.00", Currency: "IDR"},
		PartnerRefundNo: dupRefundNo}, doku.RequestOptions{AuthCode: secret.New(sb.PayerAuthCode(t))}); err != nil {
		t.Fatal(err)
	}
	// The customer token, as a merchant's client would hold it.
	key, _ := doku.LoadPrivateKey(filepath.Join(sb.Dir, "merchant.pem"))
	sig, _ := doku.SignAsymmetric(key, sb.Config.ClientID, timestamp)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-CLIENT-KEY", sb.Config.ClientID)
	h.Set("X-TIMESTAMP", timestamp)
	h.Set("X-SIGNATURE", sig)
	resp, out := sb.Post(t, doku.PathTokenB2B2C, h, []byte(`{"grantType":"authorization_code","authCode":"`+b.AdditionalInfo.AuthCode+`"}`))
	var tr doku.B2B2CTokenResponse
	if json.Unmarshal(out, &tr) != nil || tr.AccessToken == "" {
		t.Fatalf("customer token: HTTP %d %s", resp.StatusCode, out)
	}
	return tr.AccessToken
}

const (
	dupPaymentRef = "DDCTLPAY00000000000000000000000001"
	dupRefundNo   = "DDCTLRFD00000000000000000000000001"
)

func payment(ref, value string) doku.PaymentRequest {
	return doku.PaymentRequest{PartnerReferenceNo: ref, Amount: doku.Amount{Value: value, Currency: "IDR"},
		PayOptionDetails: []doku.PayOption{{PayMethod: "BALANCE", TransAmount: doku.Amount{Value: value, Currency: "IDR"}}},
		AdditionalInfo: doku.PaymentInfo{Channel: doku.Channel, Remarks: "Gym", SuccessPaymentURL: "https://x.test/ok", FailedPaymentURL: "https://x.test/fail",
			LineItems: []doku.LineItem{{Name: "Gym", Price: value, Quantity: json.RawMessage(`"1"`)}}}}
}

func body(v any) []byte {
	b, _ := doku.Marshal(v)
	return b
}

func binding(phone, os string) []byte {
	return body(doku.BindingRequest{PhoneNo: phone, AdditionalInfo: doku.BindingInfo{Channel: doku.Channel,
		CustIDMerchant: "cust-9", SuccessRegistrationURL: "https://x.test/ok", FailedRegistrationURL: "https://x.test/fail",
		DeviceModel: "Pixel", OSType: os, ChannelID: "app"}})
}

// One request per check the sandbox makes, each breaking exactly that
// check, and the exact responseCode DOKU answers.
func TestRejections(t *testing.T) {
	sb := sandboxtest.New(t, tokenOptional)
	sb.Pay(t, "INV-1", 10000)
	custTok := customerSetup(t, sb)
	tok := token(t, sb)
	full := refundBody("INV-1", "100.00")
	channel := []byte(`{"additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`)
	longRemarks := payment("DDCTLPAY00000000000000000000000003", "10.00")
	longRemarks.AdditionalInfo.Remarks = strings.Repeat("x", 41)
	noItems := payment("DDCTLPAY00000000000000000000000004", "10.00")
	noItems.AdditionalInfo.LineItems = nil
	withCust := func(h http.Header) { h.Set("Authorization-Customer", "Bearer "+custTok) }

	tests := []struct {
		name   string
		path   string
		body   []byte
		mutate func(h http.Header)
		want   doku.Code
	}{
		// Headers.
		{"MissingExternalID", doku.PathRefund, full, func(h http.Header) { h.Del("X-EXTERNAL-ID") }, "4005802"},
		{"MissingIPAddress", doku.PathRefund, full, func(h http.Header) { h.Del("X-IP-ADDRESS") }, "4005802"},
		{"ShortIPAddress", doku.PathRefund, full, func(h http.Header) { h.Set("X-IP-ADDRESS", "10.0.0.1") }, "4005801"},
		{"IPAddressNotIPv4", doku.PathRefund, full, func(h http.Header) { h.Set("X-IP-ADDRESS", "abc.def.ghi.j") }, "4005801"},
		{"NonNumericExternalID", doku.PathRefund, full, func(h http.Header) { h.Set("X-EXTERNAL-ID", "abc") }, "4005801"},
		{"BindingWithoutDeviceID", doku.PathBinding, binding("6281298765432", "android"), func(h http.Header) { h.Del("X-DEVICE-ID") }, "4000702"},
		// Signature and tokens.
		{"UnknownPartner", doku.PathRefund, full, func(h http.Header) { h.Set("X-PARTNER-ID", "BRN-OTHER") }, "4015800"},
		{"NoBearer", doku.PathRefund, full, func(h http.Header) { h.Del("Authorization") }, "4015803"},
		{"ForgedToken", doku.PathRefund, full, nil, "4015801"},
		{"BalanceWithoutCustomerToken", doku.PathBalance, channel, nil, "4011104"},
		{"BalanceWithEmptyBearer", doku.PathBalance, channel, func(h http.Header) { h.Set("Authorization-Customer", "Bearer ") }, "4011104"},
		{"BalanceWithB2BTokenAsCustomer", doku.PathBalance, channel, func(h http.Header) { h.Set("Authorization-Customer", "Bearer "+tok) }, "4011102"},
		// Duplicates.
		{"DuplicatePartnerRefundNo", doku.PathRefund, body(doku.RefundRequest{OriginalPartnerReferenceNo: "INV-1",
			RefundAmount: doku.Amount{Value: "100.00", Currency: "IDR"}, PartnerRefundNo: dupRefundNo, AdditionalInfo: doku.ChannelInfo{Channel: doku.Channel}}), nil, "4095801"},
		{"DuplicatePartnerReferenceNo", doku.PathPayment, body(payment(dupPaymentRef, "10.00")), withCust, "4095401"},
		// Fields.
		{"AmountWithoutDecimals", doku.PathRefund, refundBody("INV-1", "100"), nil, "4005801"},
		{"WrongChannel", doku.PathRefund, []byte(`{"originalPartnerReferenceNo":"INV-1","refundAmount":{"value":"100.00","currency":"IDR"},"partnerRefundNo":"DDCTLRFD00000000000000000000000077","additionalInfo":{"channel":"DIRECT_DEBIT_OVO"}}`), nil, "4005801"},
		{"StatusBadServiceCode", doku.PathStatus, []byte(`{"originalPartnerReferenceNo":"INV-1","serviceCode":"99","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`), nil, "4005501"},
		{"StatusNoReference", doku.PathStatus, []byte(`{"serviceCode":"55","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`), nil, "4005502"},
		{"BindingBadPhone", doku.PathBinding, binding("62812ab", "android"), nil, "4000701"},
		{"BindingBadOSType", doku.PathBinding, binding("6281298765432", "windows"), nil, "4000701"},
		{"PaymentLongReference", doku.PathPayment, body(payment(strings.Repeat("R", 65), "10.00")), withCust, "4005401"},
		{"PaymentLongRemarks", doku.PathPayment, body(longRemarks), withCust, "4005401"},
		{"PaymentNoLineItems", doku.PathPayment, body(noItems), withCust, "4005402"},
		{"UnbindingWithoutTokenID", doku.PathUnbinding, channel, nil, "4000902"},
		{"UnbindingWithB2BToken", doku.PathUnbinding, body(doku.UnbindingRequest{TokenID: tok, AdditionalInfo: doku.ChannelInfo{Channel: doku.Channel}}), nil, "4010902"},
		// Business rules.
		{"UnknownPayment", doku.PathRefund, refundBody("INV-404", "100.00"), nil, "4045801"},
		{"PartialRefundUnderFullPolicy", doku.PathRefund, refundBody("INV-1", "1.00"), nil, "4045813"},
		{"RefundOfRefundedPayment", doku.PathRefund, body(doku.RefundRequest{OriginalPartnerReferenceNo: "INV-2",
			RefundAmount: doku.Amount{Value: "100.00", Currency: "IDR"}, PartnerRefundNo: "DDCTLRFD00000000000000000000000099", AdditionalInfo: doku.ChannelInfo{Channel: doku.Channel}}), nil, "4035815"},
		{"StatusUnknownPayment", doku.PathStatus, []byte(`{"originalPartnerReferenceNo":"INV-404","serviceCode":"55","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`), nil, "4045501"},
		{"BindingUnknownPhone", doku.PathBinding, binding("6289999999999", "android"), nil, "4040711"},
		{"PaymentInsufficientFunds", doku.PathPayment, body(payment("DDCTLPAY00000000000000000000000005", "200000.00")), withCust, "4035414"},
		// Two checks broken at once: the earlier in DOKU's order answers.
		{"HeaderBeforeSignature", doku.PathRefund, full, func(h http.Header) { h.Del("X-IP-ADDRESS"); h.Set("X-SIGNATURE", "bad") }, "4005802"},
		{"SignatureBeforeToken", doku.PathRefund, full, func(h http.Header) {
			h.Set("Authorization", "Bearer "+tok[:len(tok)-4]+"AAAA")
		}, "4015800"},
		{"DuplicateBeforeFields", doku.PathPayment, body(func() doku.PaymentRequest {
			p := payment(dupPaymentRef, "10.00")
			p.AdditionalInfo.Remarks = ""
			return p
		}()), withCust, "4095401"},
		{"FieldsBeforeBusiness", doku.PathRefund, refundBody("INV-404", "100"), nil, "4005801"},
		{"WrongFieldType", doku.PathRefund, []byte(`{"originalPartnerReferenceNo":"INV-1","refundAmount":{"value":100,"currency":"IDR"}}`), nil, "4005801"},
		{"BadDeviceIDIsAHeaderCheck", doku.PathBinding, binding("6281298765432", "android"), func(h http.Header) { h.Set("X-DEVICE-ID", strings.Repeat("d", 65)); h.Set("X-SIGNATURE", "bad") }, "4000701"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			useTok := tok
			if tt.name == "ForgedToken" {
				useTok = tok[:len(tok)-4] + "AAAA"
			}
			h := signed(sb, useTok, tt.path, tt.body, strconv.Itoa(7700+i))
			h.Set("X-DEVICE-ID", "dev1")
			if tt.mutate != nil {
				tt.mutate(h)
			}
			resp, out := sb.Post(t, tt.path, h, tt.body)
			if got := code(t, out); got != tt.want || resp.StatusCode != got.HTTPStatus() {
				t.Fatalf("HTTP %d %s, want %s", resp.StatusCode, out, tt.want)
			}
		})
	}
	if len(tests) < 25 {
		t.Fatalf("%d cases; the table keeps at least 25", len(tests))
	}

	// The same X-EXTERNAL-ID: same body replays the answer with HTTP 409,
	// another body is a conflict.
	h := signed(sb, tok, doku.PathStatus, []byte(`{"originalPartnerReferenceNo":"INV-1","serviceCode":"55","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`), "8800")
	first, out1 := sb.Post(t, doku.PathStatus, h, []byte(`{"originalPartnerReferenceNo":"INV-1","serviceCode":"55","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`))
	again, out2 := sb.Post(t, doku.PathStatus, h, []byte(`{"originalPartnerReferenceNo":"INV-1","serviceCode":"55","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`))
	if first.StatusCode != 200 || again.StatusCode != 409 || string(out1) != string(out2) {
		t.Fatalf("replay: HTTP %d then %d; bodies equal %v", first.StatusCode, again.StatusCode, string(out1) == string(out2))
	}
	other := []byte(`{"originalPartnerReferenceNo":"INV-2","serviceCode":"55","additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP"}}`)
	resp, out := sb.Post(t, doku.PathStatus, signed(sb, tok, doku.PathStatus, other, "8800"), other)
	if code(t, out) != "4095500" || resp.StatusCode != 409 {
		t.Fatalf("same external ID, other body: HTTP %d %s, want 4095500", resp.StatusCode, out)
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

func TestFaultsAPI(t *testing.T) {
	sb := sandboxtest.New(t)
	resp, err := http.Post(sb.URL+"/sandbox/faults", "application/json",
		strings.NewReader(`{"latency": "20ms", "drop_rate": 0.25, "retry_after": "2s", "ops": ["refund"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || got["latency"] != "20ms" || got["drop_rate"] != 0.25 || got["retry_after"] != "2s" {
		t.Fatalf("HTTP %d %v", resp.StatusCode, got)
	}
	resp, _ = http.Post(sb.URL+"/sandbox/faults", "application/json", strings.NewReader(`{"latency": "soon"}`))
	if resp.StatusCode != 400 {
		t.Fatalf("bad duration: HTTP %d, want 400", resp.StatusCode)
	}
}

func TestTimestampWindow(t *testing.T) {
	sb := sandboxtest.New(t, func(c *sandbox.Config) { c.MaxSkew = 5 * time.Minute })
	sb.Pay(t, "INV-1", 100)
	c := sb.Client(t) // stamps requests with the wall clock, which the sandbox shares
	ctx := context.Background()
	if _, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}, doku.RequestOptions{}); err != nil {
		t.Fatalf("fresh timestamp refused: %v", err)
	}
	sb.Server.Advance(ctx, 10*time.Minute)
	_, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "INV-1"}, doku.RequestOptions{})
	var e *doku.Error
	if !errors.As(err, &e) || e.Code != "4015500" {
		t.Fatalf("stale timestamp: err=%v, want 4015500", err)
	}
}

// Approval without the balance fails the payment, and the customer's
// browser goes to the failure URL; a payment on a binding unbound since is
// not paid either.
func TestApprovalChecksBalanceAndBinding(t *testing.T) {
	sb := sandboxtest.New(t, tokenOptional)
	ctx := context.Background()
	c := sb.Client(t)
	customerSetup(t, sb) // 100,000; one payment of 1,000 pending
	raw, _ := json.Marshal("500")
	sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: "6281298765432", Balance: raw})
	var conf string
	sb.Server.Tick(ctx)
	l := sb.Ledger(t)
	for _, p := range l.Payments {
		if p.PartnerReferenceNo == dupPaymentRef && p.Status != doku.TxPending {
			t.Fatalf("payment %s, want pending", p.Status)
		}
	}
	// Find the payment's confirmation through its page link: pay again.
	auth := doku.RequestOptions{AuthCode: secret.New(l.Bindings[0].AuthCode)}
	p, err := c.Pay(ctx, payment("DDCTLPAY00000000000000000000000042", "400.00"), auth)
	if err != nil {
		t.Fatal(err)
	}
	conf = path.Base(p.WebRedirectURL)
	sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: "6281298765432", Balance: json.RawMessage(`"100"`)})
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.PostForm(sb.URL+"/sandbox/confirm/"+conf, url.Values{"otp": {"123456"}, "pin": {"654321"}, "action": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Location") != "https://x.test/fail" {
		t.Fatalf("approved without the balance: browser sent to %q, want the failure URL", resp.Header.Get("Location"))
	}
	st, _ := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "DDCTLPAY00000000000000000000000042"}, doku.RequestOptions{})
	if st.LatestTransactionStatus != doku.TxFailed {
		t.Fatalf("status %s, want failed", st.LatestTransactionStatus)
	}

	// Unbound before the customer approves: not paid.
	sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: "6281298765432", Balance: json.RawMessage(`"100000"`)})
	p, err = c.Pay(ctx, payment("DDCTLPAY00000000000000000000000043", "10.00"), auth)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Unbind(ctx, auth); err != nil {
		t.Fatal(err)
	}
	sb.Server.Confirm(ctx, path.Base(p.WebRedirectURL), true)
	st, _ = c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: "DDCTLPAY00000000000000000000000043"}, doku.RequestOptions{})
	if st.LatestTransactionStatus != doku.TxFailed {
		t.Fatalf("payment on an unbound binding: status %s, want failed", st.LatestTransactionStatus)
	}
}

func TestRefundNeedsCustomerToken(t *testing.T) {
	sb := sandboxtest.New(t)
	sb.Pay(t, "INV-1", 10000)
	tok := token(t, sb)
	resp, out := sb.Post(t, doku.PathRefund, signed(sb, tok, doku.PathRefund, refundBody("INV-1", "100.00"), "5501"), refundBody("INV-1", "100.00"))
	if code(t, out) != "4015804" || resp.StatusCode != 401 {
		t.Fatalf("refund without a customer token: HTTP %d %s, want 4015804", resp.StatusCode, out)
	}
	// The setting that relaxes it, for tests of other checks.
	sb = sandboxtest.New(t, tokenOptional)
	sb.Pay(t, "INV-1", 10000)
	tok = token(t, sb)
	resp, out = sb.Post(t, doku.PathRefund, signed(sb, tok, doku.PathRefund, refundBody("INV-1", "100.00"), "5502"), refundBody("INV-1", "100.00"))
	if code(t, out) != "2005800" {
		t.Fatalf("refund without a customer token, token optional: HTTP %d %s, want 2005800", resp.StatusCode, out)
	}
}

// The sandbox's own endpoints refuse what a web page could send them: a
// cross-origin text/plain POST (no preflight), a request whose Host is a
// DNS name (rebinding), a cross-origin read. A JSON POST to the address
// the sandbox listens on is taken, and so is the customer's confirmation
// form.
func TestSandboxAdminOrigin(t *testing.T) {
	e := sandboxtest.New(t)
	host := strings.TrimPrefix(e.URL, "http://")
	do := func(method, path, contentType, hostHeader, origin, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if hostHeader != "" {
			req.Host = hostHeader
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	customer := `{"phone": "6281234567890", "balance": "500000"}`
	for _, tc := range []struct {
		name                                 string
		method, path, ctype, host, origin, b string
		want                                 int
	}{
		{"text/plain POST from a page", "POST", "/sandbox/customers", "text/plain", "", "http://evil.example", customer, http.StatusForbidden},
		{"text/plain POST, same origin", "POST", "/sandbox/customers", "text/plain", "", "", customer, http.StatusForbidden},
		{"JSON POST from another origin", "POST", "/sandbox/customers", "application/json", "", "http://evil.example", customer, http.StatusForbidden},
		{"a rebound DNS name as Host", "GET", "/sandbox/ledger", "", "evil.example:80", "", "", http.StatusForbidden},
		{"JSON POST to the sandbox", "POST", "/sandbox/customers", "application/json", "", "", customer, http.StatusOK},
		{"a binding asked for by a page", "POST", "/sandbox/bindings", "text/plain", "", "http://evil.example", `{"phone": "6281299990002", "custIdMerchant": "c"}`, http.StatusForbidden},
		{"a binding asked for from another origin", "POST", "/sandbox/bindings", "application/json", "", "http://evil.example", `{"phone": "6281299990002", "custIdMerchant": "c"}`, http.StatusForbidden},
		{"a binding asked for under a rebound name", "POST", "/sandbox/bindings", "application/json", "evil.example:80", "", `{"phone": "6281299990002", "custIdMerchant": "c"}`, http.StatusForbidden},
		{"the ledger, same origin", "GET", "/sandbox/ledger", "", "", "http://" + host, "", http.StatusOK},
		{"localhost as Host", "GET", "/sandbox/stats", "", "localhost", "", "", http.StatusOK},
	} {
		if got := do(tc.method, tc.path, tc.ctype, tc.host, tc.origin, tc.b); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := len(e.Ledger(t).Customers); n != 1 {
		t.Errorf("%d customers in the ledger, want the one JSON POST's", n)
	}
}

// POST /sandbox/bindings binds an account outside ddctl, as BindOutside
// does, for a sandbox in another process: the answer's authCode is the
// active binding's, the same when asked again; a phone bound to another
// customer is refused.
func TestBindOutsideEndpoint(t *testing.T) {
	e := sandboxtest.New(t)
	post := func(body string) (int, sandbox.OutsideBinding) {
		t.Helper()
		resp, err := http.Post(e.URL+"/sandbox/bindings", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b sandbox.OutsideBinding
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, b
	}
	code, b := post(`{"phone": "` + sandboxtest.PayerPhone + `", "custIdMerchant": "` + sandboxtest.PayerCustomerID + `"}`)
	if code != http.StatusOK || b.AuthCode == "" {
		t.Fatalf("POST /sandbox/bindings: HTTP %d %+v, want 200 with an authCode", code, b)
	}
	if want := e.PayerAuthCode(t); b.AuthCode != want {
		t.Errorf("authCode %q, want BindOutside's %q", b.AuthCode, want)
	}
	var active int
	for _, lb := range e.Ledger(t).Bindings {
		if lb.Phone == sandboxtest.PayerPhone && lb.Status == sandbox.BindingActive && lb.AuthCode == b.AuthCode {
			active++
		}
	}
	if active != 1 {
		t.Errorf("%d active bindings of the payer with that authCode in the ledger, want 1", active)
	}
	if code, _ := post(`{"phone": "` + sandboxtest.PayerPhone + `", "custIdMerchant": "someone-else"}`); code != http.StatusBadRequest {
		t.Errorf("the payer's phone for another customer: HTTP %d, want 400", code)
	}
	if code, _ := post(`{"phone": "12345", "custIdMerchant": "c"}`); code != http.StatusBadRequest {
		t.Errorf("a malformed phone: HTTP %d, want 400", code)
	}
}

// POST /sandbox/confirmations answers with the confirmation's new status:
// approved or rejected.
func TestConfirmationAnswer(t *testing.T) {
	e := sandboxtest.New(t)
	c := e.Client(t)
	ctx := context.Background()
	if _, err := e.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: "6281234567890", Balance: json.RawMessage(`"500000"`)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ action, want string }{{"reject", "rejected"}, {"approve", "approved"}} {
		resp, err := c.BindAccount(ctx, doku.BindingRequest{PhoneNo: "6281234567890", AdditionalInfo: doku.BindingInfo{
			Channel: doku.Channel, CustIDMerchant: "cust-" + tc.action, SuccessRegistrationURL: "https://example.com/ok",
			FailedRegistrationURL: "https://example.com/no", DeviceModel: "x", OSType: "ios", ChannelID: "app"}}, doku.RequestOptions{DeviceID: "d1"})
		if err != nil {
			t.Fatal(err)
		}
		_, body := e.Post(t, "/sandbox/confirmations/"+path.Base(resp.RedirectURL), http.Header{"Content-Type": {"application/json"}}, []byte(`{"action":"`+tc.action+`"}`))
		var got struct{ Status string }
		if err := json.Unmarshal(body, &got); err != nil || got.Status != tc.want {
			t.Errorf("%s: answer %s, want status %q", tc.action, body, tc.want)
		}
	}
}

// tokenOptional lets refunds through without the payer's customer token,
// for tests of other checks: TestRefundNeedsCustomerToken is the token's.
func tokenOptional(c *sandbox.Config) { c.RefundCustomerTokenOptional = true }
