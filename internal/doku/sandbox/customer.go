package sandbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
)

// Binding statuses in the ledger.
const (
	BindingPending  = "PENDING"
	BindingActive   = "ACTIVE"
	BindingRejected = "REJECTED"
	BindingUnbound  = "UNBOUND"
)

// NewCustomer is the body of POST /sandbox/customers: an Allo account and
// its balance. Posting an existing phone sets its balance.
type NewCustomer struct {
	Phone   string          `json:"phone"`
	Name    string          `json:"name,omitempty"`
	Balance json.RawMessage `json:"balance"` // "150000.00", "150000" or 150000
}

// PutCustomer creates an Allo account or sets its balance.
func (s *Server) PutCustomer(ctx context.Context, nc NewCustomer) (Customer, error) {
	var c Customer
	bal, err := money.Parse(strings.Trim(string(nc.Balance), `"`))
	if err != nil {
		return c, fmt.Errorf("balance %s: want an IDR amount with at most two decimals", nc.Balance)
	}
	if !phoneRe.MatchString(nc.Phone) {
		return c, fmt.Errorf("phone %q: want 62 followed by 7 to 14 digits", nc.Phone)
	}
	c = Customer{Phone: nc.Phone, Name: nc.Name, Balance: int64(bal)}
	_, err = s.ledger.db.NamedExecContext(ctx, `INSERT INTO customers VALUES (:phone, :name, :balance)
		ON CONFLICT (phone) DO UPDATE SET balance = excluded.balance, name = excluded.name`, c)
	return c, err
}

func (s *Server) handleCustomer(w http.ResponseWriter, r *http.Request) {
	var nc NewCustomer
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&nc); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	c, err := s.PutCustomer(r.Context(), nc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// addCustomer makes the account nc describes unless the ledger has one
// at its phone, which keeps its balance (a seed read at every start must
// not undo what happened since).
func (s *Server) addCustomer(ctx context.Context, nc NewCustomer) error {
	var n int
	if err := s.ledger.db.GetContext(ctx, &n, `SELECT count(*) FROM customers WHERE phone = ?`, nc.Phone); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := s.PutCustomer(ctx, nc)
	return err
}

// Confirm approves (approve true) or rejects what confirmation id waits
// for: a binding or a payment. It is what the customer's OTP and PIN page
// does, for tests.
func (s *Server) Confirm(ctx context.Context, id string, approve bool) error {
	tx, err := s.ledger.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var cf struct {
		Kind   string `db:"kind"`
		Ref    string `db:"ref"`
		Status string `db:"status"`
	}
	err = tx.GetContext(ctx, &cf, `SELECT kind, ref, status FROM confirmations WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("confirmation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return err
	}
	if cf.Status != "pending" {
		return fmt.Errorf("confirmation %s is already %s: %w", id, cf.Status, errSettled)
	}
	now := s.now().In(doku.ExternalIDZone)
	status := "approved"
	if !approve {
		status = "rejected"
	}
	switch cf.Kind {
	case "binding":
		bs := BindingActive
		if !approve {
			bs = BindingRejected
		} else {
			// One Allo account binds to one customer per merchant (docs/doku.md#account-binding):
			// checked again now, as two requests may have waited at once.
			var n int
			if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM bindings b, bindings o WHERE b.id = ? AND o.phone = b.phone
				AND o.id != b.id AND o.status = ? AND o.cust_id_merchant != b.cust_id_merchant`, cf.Ref, BindingActive); err != nil {
				return err
			}
			if n > 0 {
				bs = BindingRejected
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bindings SET status = ? WHERE id = ? AND status = ?`, bs, cf.Ref, BindingPending); err != nil {
			return err
		}
	case "payment":
		if err := settlePayment(ctx, tx, cf.Ref, approve, now); err != nil {
			return err
		}
		if err := s.enqueueNotification(ctx, tx, cf.Ref, now); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE confirmations SET status = ? WHERE id = ?`, status, id); err != nil {
		return err
	}
	return tx.Commit()
}

// settlePayment ends a pending payment: on approval the customer's balance
// is debited (or the payment fails for want of it); on rejection it fails.
func settlePayment(ctx context.Context, tx *sqlx.Tx, ref string, approve bool, now time.Time) error {
	p, err := getPayment(ctx, tx, ref, "")
	if err != nil || p == nil {
		return fmt.Errorf("payment %s: %v", ref, cmpErr(err, ErrNotFound))
	}
	if p.Status != doku.TxPending {
		return fmt.Errorf("payment %s is no longer pending (status %s)", ref, p.Status)
	}
	status, paid := doku.TxFailed, ""
	var active int
	if err := tx.GetContext(ctx, &active, `SELECT count(*) FROM bindings WHERE phone = ? AND cust_id_merchant = ? AND status = ?`,
		p.Phone, p.CustIDMerchant, BindingActive); err != nil {
		return err
	}
	if approve && active > 0 {
		res, err := tx.ExecContext(ctx, `UPDATE customers SET balance = balance - ? WHERE phone = ? AND balance >= ?`, p.Amount, p.Phone, p.Amount)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			status, paid = doku.TxSuccess, now.Format(time.RFC3339)
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE payments SET status = ?, paid_time = ? WHERE partner_reference_no = ?`, status, paid, ref)
	return err
}

func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// ErrNotFound is returned for an unknown confirmation or payment.
var ErrNotFound = errors.New("not found")

var errSettled = errors.New("already settled")

func errorsIsSettled(err error) bool { return errors.Is(err, errSettled) }

func (s *Server) handleConfirmation(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Action string `json:"action"` // approve or reject
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil || (body.Action != "approve" && body.Action != "reject") {
		http.Error(w, `body: want {"action": "approve"} or {"action": "reject"}`, http.StatusBadRequest)
		return
	}
	err := s.Confirm(r.Context(), r.PathValue("id"), body.Action == "approve")
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusConflict)
	default:
		status := "approved"
		if body.Action == "reject" {
			status = "rejected"
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id"), "status": status})
	}
}

func newConfirmation(ctx context.Context, tx *sqlx.Tx, kind, ref string, now time.Time, successURL, failedURL string) (string, error) {
	buf := make([]byte, 12)
	rand.Read(buf)
	id := hex.EncodeToString(buf)
	_, err := tx.ExecContext(ctx, `INSERT INTO confirmations VALUES (?, ?, ?, 'pending', ?, ?, ?)`,
		id, kind, ref, now.Format(time.RFC3339Nano), successURL, failedURL)
	return id, err
}

// activeBinding checks a customer token: issued by this sandbox, not
// expired, for a binding that is active.
func (s *Server) activeBinding(ctx context.Context, token string, now time.Time) (int64, bool) {
	claims, err := verifyToken(&s.cfg.DOKUPrivateKey.PublicKey, token, now)
	if err != nil || claims.ClientID != s.cfg.ClientID || claims.AccountID == "" {
		return 0, false
	}
	id, err := strconv.ParseInt(claims.AccountID, 10, 64)
	if err != nil {
		return 0, false
	}
	var status string
	if err := s.ledger.db.GetContext(ctx, &status, `SELECT status FROM bindings WHERE id = ?`, id); err != nil || status != BindingActive {
		return 0, false
	}
	return id, true
}

// handleTokenB2B2C exchanges a binding's authCode for a customer token
// (docs/doku.md#b2b2c-token). The authCode works only once the customer has confirmed the
// binding (UNCONFIRMED for DOKU: doku.BindingActivation, docs/doku.md#binding).
func (s *Server) handleTokenB2B2C(w http.ResponseWriter, r *http.Request) {
	op := doku.OpTokenB2B2C
	s.count(op)
	ft, f := s.draw(op)
	if injectBefore(w, op, ft, f) {
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	a := s.issueB2B2C(r.Context(), r.Header, body)
	if ft == faultDrop {
		drop(w)
		return
	}
	w.Header().Set("X-CLIENT-KEY", r.Header.Get("X-CLIENT-KEY"))
	w.Header().Set("X-TIMESTAMP", s.stamp(s.now()))
	writeRaw(w, a.code.HTTPStatus(), a.bytes())
}

func (s *Server) issueB2B2C(ctx context.Context, h http.Header, body []byte) answer {
	op := doku.OpTokenB2B2C
	if a, ok := s.checkTokenRequest(op, h); !ok {
		return a
	}
	var req doku.TokenRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fail(op, 400, "00", "Bad Request")
	}
	switch {
	case req.GrantType == "refresh_token":
		// Documented, but no SDK implements it for Allo (docs/doku.md#b2b2c-token).
		return fail(op, 400, "01", "Invalid Field Format {grantType}. refresh_token is not supported")
	case req.GrantType != "authorization_code":
		return fail(op, 400, "01", "Invalid Field Format {grantType}")
	case req.AuthCode == "":
		return fail(op, 400, "02", "Invalid Mandatory Field {authCode}")
	}
	var b Binding
	err := s.ledger.db.GetContext(ctx, &b, `SELECT * FROM bindings WHERE auth_code = ?`, req.AuthCode)
	if errors.Is(err, sql.ErrNoRows) {
		return fail(op, 401, "00", "Unauthorized. Invalid authCode")
	}
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	if b.Status != BindingActive && !s.cfg.ExchangeAnyBinding {
		return fail(op, 403, "18", "Inactive Card/Account/Customer. Binding is "+strings.ToLower(b.Status))
	}
	now := s.now()
	tok, err := issueToken(s.cfg.DOKUPrivateKey, tokenClaims{
		Exp: now.Add(s.cfg.TokenLifetime).Unix(), Iss: "DOKU", ClientID: s.cfg.ClientID, AccountID: strconv.FormatInt(b.ID, 10),
	})
	if err != nil {
		return fail(op, 500, "00", "General Error")
	}
	resp := doku.B2B2CTokenResponse{
		Result:                doku.Result{ResponseCode: doku.MakeCode(200, op.Service(), "00"), ResponseMessage: "Successful"},
		AccessToken:           tok,
		TokenType:             "Bearer",
		AccessTokenExpiryTime: s.stamp(now.Add(s.cfg.TokenLifetime)),
	}
	return answer{code: resp.ResponseCode, body: resp}
}

var digitsRe = regexp.MustCompile(`^[0-9]+$`)

// validPartnerRef is DOKU's bound on a payment's partnerReferenceNo: 1 to 64
// characters. DOKU's Allo notification sample carries a 14-character one
// ("E2E20230811001", https://dashboard.doku.com/docs/docs/http-notification/sample/direct-debit/allo-direct-debit-http-sample),
// the Go SDK's README documents String(9-16) with a 7-character example
// (github.com/PTNUSASATUINTIARTHA-DOKU/doku-golang-library, README.md),
// and the Go, Java and Node SDKs bound Allo's references at 64
// (models/directdebit/refund/refundRequestDTO.go, PaymentRequestDto.java,
// _models/paymentRequestDirectDebitDTO.js). The Node SDK also wants at
// least 32 on Allo payments, and the Java SDK on a refund's
// originalPartnerReferenceNo (RefundRequestDto.java); no DOKU page does,
// so neither does the sandbox.
func validPartnerRef(s string) bool {
	n := utf8.RuneCountInString(s)
	return n >= 1 && n <= 64
}

// validDeviceID is the SDKs' X-DEVICE-ID rule: present and at most 64
// characters (doku-golang-library models/va/createVa/requestHeaderDTO.go,
// doku-java-library dto/RequestHeaderDto.java); neither limits the
// characters.
func validDeviceID(s string) bool {
	n := utf8.RuneCountInString(s)
	return n >= 1 && n <= 64
}

// binding starts an account binding (docs/doku.md#account-binding): the customer confirms it on
// the page of redirectUrl.
func (s *Server) binding(ctx context.Context, tx *sqlx.Tx, c *call) answer {
	op := c.op
	var req doku.BindingRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return badBody(op, err)
	}
	ai := req.AdditionalInfo
	if a, ok := required(op, map[string]string{
		"phoneNo": req.PhoneNo, "additionalInfo.channel": ai.Channel, "additionalInfo.custIdMerchant": ai.CustIDMerchant,
		"additionalInfo.successRegistrationUrl": ai.SuccessRegistrationURL, "additionalInfo.failedRegistrationUrl": ai.FailedRegistrationURL,
		"additionalInfo.deviceModel": ai.DeviceModel, "additionalInfo.osType": ai.OSType, "additionalInfo.channelId": ai.ChannelID,
	}); !ok {
		return a
	}
	switch {
	case len(req.PhoneNo) < 9 || len(req.PhoneNo) > 16 || !digitsRe.MatchString(req.PhoneNo):
		return fail(op, 400, "01", "Invalid Field Format {phoneNo}")
	case ai.Channel != doku.Channel:
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.channel}")
	case utf8.RuneCountInString(ai.CustIDMerchant) > 64:
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.custIdMerchant}")
	case utf8.RuneCountInString(ai.DeviceModel) > 64:
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.deviceModel}")
	// osType and channelId in any case: DOKU's Go SDK compares them with
	// strings.EqualFold (doku-golang-library
	// models/directdebit/accountbinding/accountBindingRequestDTO.go).
	case !strings.EqualFold(ai.OSType, "ios") && !strings.EqualFold(ai.OSType, "android"):
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.osType}")
	case !strings.EqualFold(ai.ChannelID, "app") && !strings.EqualFold(ai.ChannelID, "web"):
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.channelId}")
	}
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM customers WHERE phone = ?`, req.PhoneNo); err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	if n == 0 {
		return fail(op, 404, "11", "Invalid Card/Account/Customer. No Allo account for this phone")
	}
	if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM bindings WHERE phone = ? AND status = ? AND cust_id_merchant != ?`,
		req.PhoneNo, BindingActive, ai.CustIDMerchant); err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	if n > 0 {
		// One Allo account binds to one customer per merchant (docs/doku.md#account-binding).
		return fail(op, 403, "15", "Transaction Not Permitted. Account is bound to another customer")
	}
	buf := make([]byte, 16)
	rand.Read(buf)
	authCode := hex.EncodeToString(buf)
	now := c.now.In(doku.ExternalIDZone)
	res, err := tx.ExecContext(ctx, `INSERT INTO bindings (phone, cust_id_merchant, auth_code, status, created_at) VALUES (?, ?, ?, ?, ?)`,
		req.PhoneNo, ai.CustIDMerchant, authCode, BindingPending, now.Format(time.RFC3339Nano))
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	id, _ := res.LastInsertId()
	conf, err := newConfirmation(ctx, tx, "binding", strconv.FormatInt(id, 10), now, ai.SuccessRegistrationURL, ai.FailedRegistrationURL)
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	var resp doku.BindingResponse
	resp.Result = doku.Result{ResponseCode: doku.MakeCode(200, op.Service(), "00"), ResponseMessage: "Successful"}
	resp.ReferenceNo = fmt.Sprintf("BND-%s-%06d", now.Format("20060102"), id)
	resp.RedirectURL = c.base + "/sandbox/confirm/" + conf
	resp.AdditionalInfo.CustIDMerchant = ai.CustIDMerchant
	resp.AdditionalInfo.Status = BindingPending
	resp.AdditionalInfo.AuthCode = authCode
	return answer{code: resp.ResponseCode, body: resp}
}

// required answers 400xx02 naming the first missing field, in name order.
func required(op doku.Op, fields map[string]string) (answer, bool) {
	var missing []string
	for name, v := range fields {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return answer{}, true
	}
	first := missing[0]
	for _, m := range missing[1:] {
		if m < first {
			first = m
		}
	}
	return fail(op, 400, "02", "Invalid Mandatory Field {"+first+"}"), false
}

func (s *Server) bindingCustomer(ctx context.Context, tx *sqlx.Tx, bindingID int64) (Binding, Customer, error) {
	var b Binding
	var cu Customer
	if err := tx.GetContext(ctx, &b, `SELECT * FROM bindings WHERE id = ?`, bindingID); err != nil {
		return b, cu, err
	}
	err := tx.GetContext(ctx, &cu, `SELECT * FROM customers WHERE phone = ?`, b.Phone)
	return b, cu, err
}

// balance answers a balance inquiry (docs/doku.md#balance-inquiry).
func (s *Server) balance(ctx context.Context, tx *sqlx.Tx, c *call) answer {
	op := c.op
	var req doku.BalanceRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return badBody(op, err)
	}
	if req.AdditionalInfo.Channel != doku.Channel {
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.channel}")
	}
	_, cu, err := s.bindingCustomer(ctx, tx, c.bindingID)
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	amt := doku.NewAmount(money.Amount(cu.Balance))
	zero := doku.NewAmount(0)
	resp := doku.BalanceResponse{
		Result:       doku.Result{ResponseCode: doku.MakeCode(200, op.Service(), "00"), ResponseMessage: "Successful"},
		AccountInfos: []doku.AccountInfo{{BalanceType: "BALANCE", Amount: amt, FlatAmount: &amt, HoldAmount: &zero}},
	}
	return answer{code: resp.ResponseCode, body: resp}
}

// payment starts a host-to-host debit (docs/doku.md#payment): accepted now, paid when the
// customer confirms with OTP and PIN.
func (s *Server) payment(ctx context.Context, tx *sqlx.Tx, c *call) answer {
	op := c.op
	var req doku.PaymentRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return badBody(op, err)
	}
	if req.PartnerReferenceNo != "" {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM payments WHERE partner_reference_no = ?`, req.PartnerReferenceNo); err != nil {
			return fail(op, 500, "01", "Internal Server Error")
		}
		if n > 0 {
			return fail(op, 409, "01", "Duplicate partnerReferenceNo")
		}
	}
	ai := req.AdditionalInfo
	if a, ok := required(op, map[string]string{
		"partnerReferenceNo": req.PartnerReferenceNo, "amount.value": req.Amount.Value, "amount.currency": req.Amount.Currency,
		"additionalInfo.channel": ai.Channel, "additionalInfo.remarks": ai.Remarks,
		"additionalInfo.successPaymentUrl": ai.SuccessPaymentURL, "additionalInfo.failedPaymentUrl": ai.FailedPaymentURL,
	}); !ok {
		return a
	}
	amount, err := req.Amount.Money()
	switch {
	case !validPartnerRef(req.PartnerReferenceNo):
		return fail(op, 400, "01", "Invalid Field Format {partnerReferenceNo}")
	case err != nil:
		return fail(op, 400, "01", "Invalid Field Format {amount}")
	case ai.Channel != doku.Channel:
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.channel}")
	case utf8.RuneCountInString(ai.Remarks) > 40:
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.remarks}")
	case len(ai.LineItems) == 0:
		return fail(op, 400, "02", "Invalid Mandatory Field {additionalInfo.lineItems}")
	}
	if len(req.PayOptionDetails) == 0 && s.cfg.PayOptionDetailsRequired {
		return fail(op, 400, "02", "Invalid Mandatory Field {payOptionDetails}")
	}
	for _, po := range req.PayOptionDetails {
		// Allo's pay methods, from the Go SDK's README (Allo Bank Specific
		// Parameters) and the Node SDK's schema
		// (_models/paymentRequestDirectDebitDTO.js).
		switch po.PayMethod {
		case "BALANCE", "POINT", "PAYLATER":
		default:
			return fail(op, 400, "01", "Invalid Field Format {payOptionDetails.payMethod}")
		}
		if _, err := po.TransAmount.Money(); err != nil {
			return fail(op, 400, "01", "Invalid Field Format {payOptionDetails.transAmount}")
		}
		if po.FeeAmount != (doku.Amount{}) {
			if _, err := po.FeeAmount.Money(); err != nil {
				return fail(op, 400, "01", "Invalid Field Format {payOptionDetails.feeAmount}")
			}
		}
	}
	for _, li := range ai.LineItems {
		if li.Name == "" || utf8.RuneCountInString(li.Name) > 32 {
			return fail(op, 400, "01", "Invalid Field Format {additionalInfo.lineItems.name}")
		}
		if _, err := money.ParseWire(li.Price); err != nil {
			return fail(op, 400, "01", "Invalid Field Format {additionalInfo.lineItems.price}")
		}
		if q := strings.Trim(string(li.Quantity), `"`); !digitsRe.MatchString(q) {
			return fail(op, 400, "01", "Invalid Field Format {additionalInfo.lineItems.quantity}")
		}
	}
	if amount <= 0 {
		return fail(op, 404, "13", "Invalid Amount")
	}
	b, cu, err := s.bindingCustomer(ctx, tx, c.bindingID)
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	if b.Status != BindingActive {
		return fail(op, 401, "02", "Invalid Customer Token")
	}
	if cu.Balance < int64(amount) {
		return fail(op, 403, "14", "Insufficient Funds")
	}
	now := c.now.In(doku.ExternalIDZone)
	n, err := nextNumber(ctx, tx, "reference_no")
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	p := Payment{
		PartnerReferenceNo: req.PartnerReferenceNo,
		ReferenceNo:        fmt.Sprintf("%s%018d", now.Format("20060102"), n),
		ExternalID:         c.externalID,
		Amount:             int64(amount),
		Phone:              b.Phone,
		CustIDMerchant:     b.CustIDMerchant,
		Status:             doku.TxPending,
		CreatedAt:          now.Format(time.RFC3339Nano),
	}
	if _, err := tx.NamedExecContext(ctx, `INSERT INTO payments VALUES (:partner_reference_no, :reference_no,
		:external_id, :amount, :phone, :cust_id_merchant, :status, :created_at, :paid_time)`, p); err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	conf, err := newConfirmation(ctx, tx, "payment", p.PartnerReferenceNo, now, ai.SuccessPaymentURL, ai.FailedPaymentURL)
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	resp := doku.PaymentResponse{
		Result:             doku.Result{ResponseCode: doku.MakeCode(200, op.Service(), "00"), ResponseMessage: "Successful"},
		ReferenceNo:        p.ReferenceNo,
		PartnerReferenceNo: p.PartnerReferenceNo,
		WebRedirectURL:     c.base + "/sandbox/confirm/" + conf,
	}
	return answer{code: resp.ResponseCode, body: resp}
}

// unbinding removes a binding (docs/doku.md#account-unbinding): tokenId is its customer token.
func (s *Server) unbinding(ctx context.Context, tx *sqlx.Tx, c *call) answer {
	op := c.op
	var req doku.UnbindingRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return badBody(op, err)
	}
	switch {
	case req.TokenID == "":
		return fail(op, 400, "02", "Invalid Mandatory Field {tokenId}")
	case len(req.TokenID) > 2048:
		return fail(op, 400, "01", "Invalid Field Format {tokenId}")
	case req.AdditionalInfo.Channel != doku.Channel:
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.channel}")
	}
	id, ok := s.activeBindingTx(ctx, tx, req.TokenID, c.now)
	if !ok {
		return fail(op, 401, "02", "Invalid Customer Token")
	}
	if _, err := tx.ExecContext(ctx, `UPDATE bindings SET status = ? WHERE id = ?`, BindingUnbound, id); err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	resp := doku.UnbindingResponse{
		Result:      doku.Result{ResponseCode: doku.MakeCode(200, op.Service(), "00"), ResponseMessage: "Successful"},
		ReferenceNo: fmt.Sprintf("UNB-%s-%06d", c.now.In(doku.ExternalIDZone).Format("20060102"), id),
	}
	return answer{code: resp.ResponseCode, body: resp}
}

func (s *Server) activeBindingTx(ctx context.Context, tx *sqlx.Tx, token string, now time.Time) (int64, bool) {
	claims, err := verifyToken(&s.cfg.DOKUPrivateKey.PublicKey, token, now)
	if err != nil || claims.ClientID != s.cfg.ClientID || claims.AccountID == "" {
		return 0, false
	}
	id, err := strconv.ParseInt(claims.AccountID, 10, 64)
	if err != nil {
		return 0, false
	}
	var status string
	if err := tx.GetContext(ctx, &status, `SELECT status FROM bindings WHERE id = ?`, id); err != nil || status != BindingActive {
		return 0, false
	}
	return id, true
}

// BindOutside binds the Allo account at phone to the merchant's customer
// custID as the merchant's own systems would have, outside ddctl: the
// account is made if missing (with a zero balance), and the binding is
// active at once. It returns the binding's authCode, which ddctl adopts
// with ddctl import. Asked again for the same phone and customer, it
// returns the same authCode.
func (s *Server) BindOutside(ctx context.Context, phone, custID string) (string, error) {
	if !phoneRe.MatchString(phone) {
		return "", fmt.Errorf("phone %q: want 62 followed by 7 to 14 digits", phone)
	}
	if custID == "" || utf8.RuneCountInString(custID) > 64 {
		return "", fmt.Errorf("customer id %q: want 1 to 64 characters", custID)
	}
	tx, err := s.ledger.db.BeginTxx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO customers (phone, name, balance) VALUES (?, '', 0) ON CONFLICT (phone) DO NOTHING`, phone); err != nil {
		return "", err
	}
	var bound []Binding
	if err := tx.SelectContext(ctx, &bound, `SELECT * FROM bindings WHERE phone = ? AND status = ?`, phone, BindingActive); err != nil {
		return "", err
	}
	for _, b := range bound {
		if b.CustIDMerchant != custID {
			return "", fmt.Errorf("phone %s is bound to another customer, %q", phone, b.CustIDMerchant)
		}
		return b.AuthCode, nil
	}
	buf := make([]byte, 16)
	rand.Read(buf)
	authCode := hex.EncodeToString(buf)
	if _, err := tx.ExecContext(ctx, `INSERT INTO bindings (phone, cust_id_merchant, auth_code, status, created_at) VALUES (?, ?, ?, ?, ?)`,
		phone, custID, authCode, BindingActive, s.now().In(doku.ExternalIDZone).Format(time.RFC3339Nano)); err != nil {
		return "", err
	}
	return authCode, tx.Commit()
}

// OutsideBinding is the body of POST /sandbox/bindings: an account bound
// to a merchant's customer outside ddctl (BindOutside). The answer holds
// its authCode, which a test or demo of another process adopts with
// ddctl import.
type OutsideBinding struct {
	Phone          string `json:"phone"`
	CustIDMerchant string `json:"custIdMerchant"`
	AuthCode       string `json:"authCode,omitempty"`
}

func (s *Server) handleBindOutside(w http.ResponseWriter, r *http.Request) {
	var b OutsideBinding
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	code, err := s.BindOutside(r.Context(), b.Phone, b.CustIDMerchant)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.AuthCode = code
	writeJSON(w, http.StatusOK, b)
}
