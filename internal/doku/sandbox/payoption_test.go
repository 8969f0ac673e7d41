package sandbox_test

import (
	"testing"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
)

// payOptionDetails, when sent, carries one of Allo's pay methods (BALANCE,
// POINT, PAYLATER: doku-golang-library README.md, Allo Bank Specific
// Parameters) and IDR amounts.
func TestPayOptionDetailsChecked(t *testing.T) {
	sb := sandboxtest.New(t, pinned)
	cust := customerSetup(t, sb)
	tok := token(t, sb)
	for i, tc := range []struct {
		po   doku.PayOption
		want doku.Code
	}{
		{doku.PayOption{PayMethod: "CASH", TransAmount: doku.Amount{Value: "10.00", Currency: "IDR"}}, "4005401"},
		{doku.PayOption{PayMethod: "BALANCE", TransAmount: doku.Amount{Value: "10", Currency: "IDR"}}, "4005401"},
		{doku.PayOption{PayMethod: "BALANCE", TransAmount: doku.Amount{Value: "10.00", Currency: "IDR"}, FeeAmount: doku.Amount{Value: "0.00", Currency: "USD"}}, "4005401"},
		{doku.PayOption{PayMethod: "POINT", TransAmount: doku.Amount{Value: "10.00", Currency: "IDR"}}, "2005400"},
	} {
		p := payment("DDCTLPAY0000000000000000000000008"+string(rune('0'+i)), "10.00")
		p.PayOptionDetails = []doku.PayOption{tc.po}
		b := body(p)
		h := signed(sb, tok, doku.PathPayment, b, "980"+string(rune('0'+i)))
		h.Set("Authorization-Customer", "Bearer "+cust)
		resp, out := sb.Post(t, doku.PathPayment, h, b)
		if got := code(t, out); got != tc.want || resp.StatusCode != got.HTTPStatus() {
			t.Fatalf("payOptionDetails %+v: HTTP %d %s, want %s", tc.po, resp.StatusCode, out, tc.want)
		}
	}
}
