package sandbox

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"regexp"

	"github.com/ddctl/ddctl/internal/money"
)

// The page a redirectUrl or webRedirectUrl opens: where the customer
// confirms a binding or a payment with OTP and PIN, as on Allo's page.

var confirmPage = template.Must(template.New("confirm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allo Bank (sandbox): confirm</title>
<style>body{font-family:sans-serif;max-width:28rem;margin:3rem auto}label{display:block;margin:.8rem 0}
input{font-size:1.2rem;width:8rem}.err{color:#b00}.note{color:#666;font-size:.9rem}</style></head>
<body>
<h1>Allo Bank</h1>
{{if eq .Kind "payment"}}<p>Pay <strong>{{.Amount}}</strong> to the merchant.</p>
{{else}}<p>Link your Allo account <strong>{{.Phone}}</strong> to the merchant.</p>{{end}}
{{if ne .Status "pending"}}<p id="status">This request is {{.Status}}.</p>
{{else}}
{{if .Error}}<p class="err" id="error">{{.Error}}</p>{{end}}
<form method="post" action="/sandbox/confirm/{{.ID}}">
<label>OTP <input name="otp" inputmode="numeric" autocomplete="one-time-code" required></label>
<label>PIN <input name="pin" type="password" inputmode="numeric" required></label>
<button name="action" value="approve">Confirm</button>
<button name="action" value="reject" formnovalidate>Cancel</button>
</form>
<p class="note">Sandbox: any 6-digit OTP and 6-digit PIN are accepted.</p>
{{end}}
</body></html>
`))

type pageData struct {
	ID, Kind, Status, Amount, Phone, Error string
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

func (s *Server) confirmation(ctx context.Context, id string) (pageData, string, string, error) {
	var cf struct {
		Kind       string `db:"kind"`
		Ref        string `db:"ref"`
		Status     string `db:"status"`
		SuccessURL string `db:"success_url"`
		FailedURL  string `db:"failed_url"`
	}
	if err := s.ledger.db.GetContext(ctx, &cf, `SELECT kind, ref, status, success_url, failed_url FROM confirmations WHERE id = ?`, id); err != nil {
		return pageData{}, "", "", ErrNotFound
	}
	d := pageData{ID: id, Kind: cf.Kind, Status: cf.Status}
	switch cf.Kind {
	case "payment":
		var amount int64
		var phone string
		s.ledger.db.QueryRowContext(ctx, `SELECT amount, phone FROM payments WHERE partner_reference_no = ?`, cf.Ref).Scan(&amount, &phone)
		d.Amount, d.Phone = money.Amount(amount).String(), maskPhone(phone)
	case "binding":
		var phone string
		s.ledger.db.QueryRowContext(ctx, `SELECT phone FROM bindings WHERE id = ?`, cf.Ref).Scan(&phone)
		d.Phone = maskPhone(phone)
	}
	return d, cf.SuccessURL, cf.FailedURL, nil
}

func (s *Server) handleConfirmPage(w http.ResponseWriter, r *http.Request) {
	d, _, _, err := s.confirmation(r.Context(), r.PathValue("id"))
	if err != nil {
		http.Error(w, "no such confirmation", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	confirmPage.Execute(w, d)
}

func (s *Server) handleConfirmForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, okURL, failURL, err := s.confirmation(r.Context(), id)
	if err != nil {
		http.Error(w, "no such confirmation", http.StatusNotFound)
		return
	}
	approve := r.PostFormValue("action") == "approve"
	if approve && (!sixDigits.MatchString(r.PostFormValue("otp")) || !sixDigits.MatchString(r.PostFormValue("pin"))) {
		d.Error = "Enter a 6-digit OTP and a 6-digit PIN."
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnprocessableEntity)
		confirmPage.Execute(w, d)
		return
	}
	if err := s.Confirm(r.Context(), id, approve); err != nil && !errors.Is(err, errSettled) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// The browser goes back to the merchant, as DOKU sends it, according
	// to how it ended (approval may still fail, for want of balance); this
	// is no proof of payment (docs/doku.md#payment).
	target := failURL
	if s.succeeded(r.Context(), id) {
		target = okURL
	}
	if target == "" {
		d, _, _, _ = s.confirmation(r.Context(), id)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		confirmPage.Execute(w, d)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// maskPhone shows a phone number as 6281****7890.
func maskPhone(p string) string {
	if len(p) < 9 {
		return "****"
	}
	return p[:4] + "****" + p[len(p)-4:]
}

// succeeded reports whether what a confirmation waited for ended well: a
// paid payment or an active binding.
func (s *Server) succeeded(ctx context.Context, id string) bool {
	var n int
	s.ledger.db.GetContext(ctx, &n, `SELECT count(*) FROM confirmations c WHERE c.id = ? AND (
		(c.kind = 'payment' AND EXISTS (SELECT 1 FROM payments p WHERE p.partner_reference_no = c.ref AND p.status = '00')) OR
		(c.kind = 'binding' AND EXISTS (SELECT 1 FROM bindings b WHERE b.id = c.ref AND b.status = 'ACTIVE')))`, id)
	return n == 1
}
