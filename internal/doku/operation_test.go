package doku_test

import (
	"context"
	"encoding/json"
	"errors"
	"path"
	"testing"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/secret"
)

const phone = "6281298765432"

func bindingReq(custID string) doku.BindingRequest {
	return doku.BindingRequest{PhoneNo: phone, AdditionalInfo: doku.BindingInfo{
		CustIDMerchant: custID, SuccessRegistrationURL: "https://shop.example.test/bind/ok",
		FailedRegistrationURL: "https://shop.example.test/bind/fail", DeviceModel: "Pixel 8", OSType: "android", ChannelID: "app",
	}}
}

func paymentReq(ref, value string) doku.PaymentRequest {
	return doku.PaymentRequest{
		PartnerReferenceNo: ref,
		Amount:             doku.Amount{Value: value, Currency: "IDR"},
		AdditionalInfo: doku.PaymentInfo{
			Remarks: "Gym membership", SuccessPaymentURL: "https://shop.example.test/pay/ok", FailedPaymentURL: "https://shop.example.test/pay/fail",
			LineItems: []doku.LineItem{{Name: "Gym", Price: value, Quantity: json.RawMessage(`"1"`)}},
		},
	}
}

func confirmationID(url string) string { return path.Base(url) }

func codeOf(t *testing.T, err error) doku.Code {
	t.Helper()
	var e *doku.Error
	if !errors.As(err, &e) {
		t.Fatalf("err=%v, want *doku.Error", err)
	}
	return e.Code
}

// The life of a binding: bind, confirm, balance, pay, confirm, refund,
// unbind; each against the sandbox over real HTTP.
func TestBindingLifecycle(t *testing.T) {
	sb := sandboxtest.New(t)
	c := sb.Client(t)
	ctx := context.Background()
	raw, _ := json.Marshal("200000.00")
	if _, err := sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: phone, Balance: raw}); err != nil {
		t.Fatal(err)
	}

	b, err := c.BindAccount(ctx, bindingReq("cust-42"), doku.RequestOptions{DeviceID: "device1"})
	if err != nil {
		t.Fatalf("BindAccount: %v", err)
	}
	if b.ResponseCode != "2000700" || b.AdditionalInfo.AuthCode == "" || b.AdditionalInfo.Status != "PENDING" || b.RedirectURL == "" {
		t.Fatalf("binding answer %+v", b)
	}
	auth := doku.RequestOptions{AuthCode: secret.New(b.AdditionalInfo.AuthCode)}

	// Before the customer confirms, the authCode buys no customer token.
	_, err = c.Balance(ctx, auth)
	if got := codeOf(t, err); got != "4037418" {
		t.Fatalf("balance before confirmation: %s, want 4037418", got)
	}
	if err := sb.Server.Confirm(ctx, confirmationID(b.RedirectURL), true); err != nil {
		t.Fatal(err)
	}

	bal, err := c.Balance(ctx, auth)
	if err != nil {
		t.Fatalf("Balance: %v", err)
	}
	if bal.ResponseCode != "2001100" || len(bal.AccountInfos) != 1 || bal.AccountInfos[0].Amount.Value != "200000.00" {
		t.Fatalf("balance answer %+v", bal)
	}

	const ref = "DDCTLPAY00000000000000000000000001"
	p, err := c.Pay(ctx, paymentReq(ref, "150000.00"), auth)
	if err != nil {
		t.Fatalf("Pay: %v", err)
	}
	if p.ResponseCode != "2005400" || p.WebRedirectURL == "" || p.ReferenceNo == "" {
		t.Fatalf("payment answer %+v", p)
	}
	st, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: ref}, doku.RequestOptions{})
	if err != nil || st.LatestTransactionStatus != doku.TxPending {
		t.Fatalf("status before confirmation: %+v %v, want pending", st, err)
	}
	if err := sb.Server.Confirm(ctx, confirmationID(p.WebRedirectURL), true); err != nil {
		t.Fatal(err)
	}
	st, err = c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: ref}, doku.RequestOptions{})
	if err != nil || st.LatestTransactionStatus != doku.TxSuccess {
		t.Fatalf("status after confirmation: %+v %v, want success", st, err)
	}
	if bal, _ := c.Balance(ctx, auth); bal.AccountInfos[0].Amount.Value != "50000.00" {
		t.Fatalf("balance after paying: %s, want 50000.00", bal.AccountInfos[0].Amount.Value)
	}

	// Not enough left for another 100,000.
	_, err = c.Pay(ctx, paymentReq("DDCTLPAY00000000000000000000000002", "100000.00"), auth)
	if got := codeOf(t, err); got != "4035414" || doku.OutcomeOf(err) != doku.Failed {
		t.Fatalf("payment beyond the balance: %s %v, want 4035414 failed", got, doku.OutcomeOf(err))
	}
	// The same partnerReferenceNo again: duplicate, outcome unknown.
	_, err = c.Pay(ctx, paymentReq(ref, "1.00"), auth)
	if got := codeOf(t, err); got != "4095401" || doku.OutcomeOf(err) != doku.Unknown {
		t.Fatalf("duplicate payment: %s, want 4095401 unknown", got)
	}

	r, err := c.Refund(ctx, doku.RefundRequest{OriginalPartnerReferenceNo: ref, RefundAmount: doku.Amount{Value: "150000.00", Currency: "IDR"},
		PartnerRefundNo: "DDCTLRFD00000000000000000000000001"}, auth)
	if err != nil || r.ResponseCode != "2005800" {
		t.Fatalf("Refund with the customer token: %+v %v", r, err)
	}
	// The refund puts the money back.
	if bal, _ := c.Balance(ctx, auth); bal.AccountInfos[0].Amount.Value != "200000.00" {
		t.Fatalf("balance after the refund: %s, want 200000.00", bal.AccountInfos[0].Amount.Value)
	}
	// Approving the same payment again changes nothing: paid once.
	if err := sb.Server.Confirm(ctx, confirmationID(p.WebRedirectURL), true); err == nil {
		t.Fatal("a second approval of the same payment was accepted")
	}

	u, err := c.Unbind(ctx, auth)
	if err != nil || u.ResponseCode != "2000900" {
		t.Fatalf("Unbind: %+v %v", u, err)
	}
	if _, err := c.Balance(ctx, auth); err == nil {
		t.Fatal("balance after unbinding succeeded")
	}
	// Tokens were reused while valid: one B2B, one customer token before
	// the unbinding and one attempt after it.
	if got := sb.Calls(doku.OpTokenB2B); got != 1 {
		t.Fatalf("B2B token requests=%d, want 1", got)
	}
	if got := sb.Calls(doku.OpTokenB2B2C); got != 3 {
		t.Fatalf("customer token requests=%d, want 3 (refused, issued, refused)", got)
	}
	l := sb.Ledger(t)
	if len(l.Bindings) != 1 || l.Bindings[0].Status != sandbox.BindingUnbound {
		t.Fatalf("bindings %+v", l.Bindings)
	}
}

func TestPaymentRejectedByCustomer(t *testing.T) {
	sb := sandboxtest.New(t)
	c := sb.Client(t)
	ctx := context.Background()
	auth := bind(t, sb, c, "50000", "cust-1")
	const ref = "DDCTLPAY00000000000000000000000009"
	p, err := c.Pay(ctx, paymentReq(ref, "10000.00"), auth)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Server.Confirm(ctx, confirmationID(p.WebRedirectURL), false); err != nil {
		t.Fatal(err)
	}
	st, _ := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: ref}, doku.RequestOptions{})
	if st.LatestTransactionStatus != doku.TxFailed {
		t.Fatalf("status after rejection %s, want 06", st.LatestTransactionStatus)
	}
	if bal, _ := c.Balance(ctx, auth); bal.AccountInfos[0].Amount.Value != "50000.00" {
		t.Fatalf("balance after a rejected payment %s, want untouched 50000.00", bal.AccountInfos[0].Amount.Value)
	}
}

// bind gives the test phone an Allo account holding balance, binds it
// for custID, has the customer confirm, and returns the options of calls
// made in that customer's name.
func bind(t *testing.T, sb *sandboxtest.Env, c *doku.Client, balance, custID string) doku.RequestOptions {
	t.Helper()
	ctx := context.Background()
	raw, _ := json.Marshal(balance)
	if _, err := sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: phone, Balance: raw}); err != nil {
		t.Fatal(err)
	}
	b, err := c.BindAccount(ctx, bindingReq(custID), doku.RequestOptions{DeviceID: "device1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Server.Confirm(ctx, confirmationID(b.RedirectURL), true); err != nil {
		t.Fatal(err)
	}
	return doku.RequestOptions{AuthCode: secret.New(b.AdditionalInfo.AuthCode)}
}
