// Package sandbox is a local simulator of DOKU's SNAP API for Allo Bank
// direct debit: the stand-in for DOKU in every test, demo and benchmark of
// ddctl, so it checks what DOKU checks, in DOKU's order:
// headers, signature, token, X-EXTERNAL-ID replay, duplicate business keys,
// field validation, business rules.
//
// A Server is an http.Handler with its own SQLite ledger. It uses package
// doku's wire types and signature functions, so client and simulator agree
// on the bytes by construction, and the tests of one exercise the other.
package sandbox

import (
	"cmp"
	"context"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/secret"
)

// Refund policies.
const (
	RefundFull    = "full"
	RefundPartial = "partial"
)

// DefaultRefundSuccessCode is the code a refund succeeds with: SNAP says
// 2005800, DOKU's samples show 2000700 (UNCONFIRMED, docs/doku.md#refund).
const DefaultRefundSuccessCode = "2005800"

// DefaultPaymentExpiry is how long a confirmation waits by default.
const DefaultPaymentExpiry = 15 * time.Minute

// Config is what a Server needs.
type Config struct {
	ClientID          string
	ClientSecret      secret.Value
	MerchantPublicKey *rsa.PublicKey  // verifies token requests
	DOKUPrivateKey    *rsa.PrivateKey // signs the tokens it issues
	LedgerPath        string          // the SQLite ledger file
	RefundPolicy      string          // RefundFull (default) or RefundPartial
	RefundSuccessCode string          // default DefaultRefundSuccessCode
	TokenLifetime     time.Duration   // default doku.DefaultTokenLifetime
	// AutoApprove, when set, approves every binding and payment this long
	// after it was asked for, as a customer who always says yes.
	AutoApprove time.Duration
	// PaymentExpiry is how long a payment or binding waits for its
	// customer before it fails (UNCONFIRMED for DOKU, docs/doku.md#payment).
	PaymentExpiry time.Duration // default DefaultPaymentExpiry
	// RefundCustomerTokenOptional lets a refund through without
	// Authorization-Customer. DOKU's direct-debit refund page lists the
	// header as required, and every official SDK sends it
	// (docs/doku.md#refund), so the sandbox requires it unless this is
	// set; when sent, the token is checked either way and must be the
	// payer's.
	RefundCustomerTokenOptional bool
	// StatusWithoutAmount answers status inquiries with no transAmount,
	// which every SDK's model marks optional and the Go SDK's own status
	// fixture leaves out.
	StatusWithoutAmount bool
	// MaxSkew refuses requests whose X-TIMESTAMP is further than this from
	// the sandbox's clock; 0 accepts any. DOKU's window is UNCONFIRMED
	// (docs/doku.md#timestamps), so the default is to accept.
	MaxSkew time.Duration

	// UNCONFIRMED behaviours: what the sandbox does where DOKU's documents
	// say nothing (or its SDKs disagree). Each setting's zero value keeps
	// the sandbox's reading; a test sets another to see how ddctl copes.

	// ExchangeAnyBinding (UNCONFIRMED) makes the B2B2C exchange issue a
	// customer token for a binding the customer has not confirmed, or that
	// was rejected or unbound, which then fails where it is used (401xx02).
	// By default the exchange answers 403xx18 for such a binding, and ddctl
	// reads binding activation and removal from that answer
	// (doku.Client.CustomerToken, Unbind; internal/reconcile).
	ExchangeAnyBinding bool
	// RefundAmountCase and RefundNotPermittedCase (UNCONFIRMED) are the
	// case codes of a refund that breaks the refund policy (404) and of a
	// refund of a payment that cannot be refunded (403); default
	// doku.CaseRefundAmount (4045813) and doku.CaseRefundNotPermitted
	// (4035815), the codes ddctl reads (internal/doku/unconfirmed.go).
	RefundAmountCase, RefundNotPermittedCase string
	// StatusServiceCode (UNCONFIRMED), when set, is the only serviceCode a
	// status inquiry may carry; by default both 55 (every DOKU SDK, and
	// doku.StatusServiceCode, which ddctl sends) and 54 (SNAP's
	// convention) are accepted.
	StatusServiceCode string
	// ExternalIDZone (UNCONFIRMED) is the zone whose calendar day bounds
	// X-EXTERNAL-ID's uniqueness; default doku.ExternalIDZone (WIB), as
	// ddctl assumes when it chooses X-EXTERNAL-IDs.
	ExternalIDZone *time.Location
	// PaymentNeedsChannelID (UNCONFIRMED) makes CHANNEL-ID mandatory on
	// payments: the Go and Java SDKs send it (doku-golang-library
	// services/directDebitServices.go, doku-java-library
	// service/DirectDebitService.java), the Node and PHP SDKs do not, and
	// ddctl sends doku.PaymentChannelID.
	PaymentNeedsChannelID bool
	// RefundNeedsDeviceID (UNCONFIRMED) makes X-DEVICE-ID mandatory on
	// refunds: the Java and PHP SDKs send it, but the Go, Java and Node
	// SDKs require it only for DANA and ShopeePay, never for Allo
	// (doku-java-library dto/RequestHeaderDto.java validateRefundHeader,
	// doku-golang-library models/va/createVa/requestHeaderDTO.go
	// ValidatePaymentAndRefund). ddctl sends it only when configured with
	// a device ID (doku.Config.DeviceID).
	RefundNeedsDeviceID bool
	// PayOptionDetailsRequired (UNCONFIRMED) makes payOptionDetails
	// mandatory on payments, as the Go SDK's README marks it for Allo; the
	// Node and Java SDKs leave it optional. When sent, it is checked either
	// way. ddctl always sends one BALANCE entry (internal/reconcile).
	PayOptionDetailsRequired bool

	// NotifyURL is the merchant's notification URL; empty sends none.
	NotifyURL string
	// MerchantTokenURL is the merchant's token endpoint DOKU calls before
	// notifying; default NotifyURL's host with doku.PathTokenB2B.
	MerchantTokenURL string
	// NotifyMode is how notifications are signed (default
	// doku.DefaultNotificationMode, symmetric).
	NotifyMode doku.NotificationMode
	// NotifyRetryScale multiplies DOKU's retry schedule (default
	// DefaultNotifyRetryScale).
	NotifyRetryScale float64
	NowFunc          func() time.Time
	Logger           *slog.Logger
}

// Server simulates DOKU. It is safe for concurrent use; Close it to close
// its ledger.
type Server struct {
	cfg    Config
	ledger *ledger
	mux    *http.ServeMux
	clock  clock
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}

	tickMu     sync.Mutex // one Tick at a time, so nothing is delivered twice by accident
	httpClient *http.Client
	// merchantToken is the last token the merchant's endpoint gave, kept
	// for reuse as a client keeps its B2B token, not asked per delivery.
	merchantToken struct {
		sync.Mutex
		token string
		at    time.Time
	}
	calls  map[string]*atomic.Int64 // fixed at Open, so reads need no lock
	faults faultBox
}

// Open opens (or creates) the ledger and returns a Server.
func Open(cfg Config) (*Server, error) {
	if cfg.ClientID == "" || cfg.ClientSecret.IsZero() || cfg.MerchantPublicKey == nil || cfg.DOKUPrivateKey == nil {
		return nil, errors.New("sandbox: client ID, client secret, merchant public key and DOKU private key are required")
	}
	cfg.RefundPolicy = cmp.Or(cfg.RefundPolicy, RefundFull)
	if cfg.RefundPolicy != RefundFull && cfg.RefundPolicy != RefundPartial {
		return nil, fmt.Errorf("sandbox: refund policy %q: want %q or %q", cfg.RefundPolicy, RefundFull, RefundPartial)
	}
	cfg.RefundSuccessCode = cmp.Or(cfg.RefundSuccessCode, DefaultRefundSuccessCode)
	switch cfg.NotifyMode {
	case "", doku.ModeAsymmetric, doku.ModeSymmetric, doku.ModeTokenOnly:
	default:
		return nil, fmt.Errorf("sandbox: notification mode %q: want %q, %q or %q", cfg.NotifyMode, doku.ModeAsymmetric, doku.ModeSymmetric, doku.ModeTokenOnly)
	}
	cfg.TokenLifetime = cmp.Or(cfg.TokenLifetime, doku.DefaultTokenLifetime)
	cfg.RefundAmountCase = cmp.Or(cfg.RefundAmountCase, doku.CaseRefundAmount)
	cfg.RefundNotPermittedCase = cmp.Or(cfg.RefundNotPermittedCase, doku.CaseRefundNotPermitted)
	if cfg.ExternalIDZone == nil {
		cfg.ExternalIDZone = doku.ExternalIDZone
	}
	switch cfg.StatusServiceCode {
	case "", doku.ServiceStatus, doku.ServicePayment:
	default:
		return nil, fmt.Errorf("sandbox: status service code %q: want %q or %q", cfg.StatusServiceCode, doku.ServiceStatus, doku.ServicePayment)
	}
	l, err := openLedger(cfg.LedgerPath)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		ledger: l,
		mux:    http.NewServeMux(),
		clock:  clock{base: cfg.NowFunc},
		log:    cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		calls:  map[string]*atomic.Int64{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if s.clock.base == nil {
		s.clock.base = time.Now
	}
	s.cfg.PaymentExpiry = cmp.Or(s.cfg.PaymentExpiry, DefaultPaymentExpiry)
	s.cfg.NotifyRetryScale = cmp.Or(s.cfg.NotifyRetryScale, DefaultNotifyRetryScale)
	s.httpClient = &http.Client{Timeout: 10 * time.Second}
	for op := doku.OpTokenB2B; op <= doku.OpUnbinding; op++ {
		s.calls[op.String()] = new(atomic.Int64)
	}
	s.mux.HandleFunc("POST "+doku.PathTokenB2B, s.handleTokenB2B)
	s.mux.HandleFunc("POST "+doku.PathTokenB2B2C, s.handleTokenB2B2C)
	s.mux.HandleFunc("POST "+doku.PathStatus, s.transactional(doku.OpStatus, route{}, s.status))
	// Every SDK sends and checks X-IP-ADDRESS on an Allo refund and
	// Authorization-Customer with it (doku-golang-library
	// models/va/createVa/requestHeaderDTO.go ValidatePaymentAndRefund,
	// services/directDebitServices.go DoRefundProcess); none sends
	// CHANNEL-ID on a refund, so it is not looked at.
	refundRoute := route{headers: []string{"X-IP-ADDRESS"}, customer: true}
	if cfg.RefundCustomerTokenOptional {
		refundRoute = route{headers: []string{"X-IP-ADDRESS"}, customerOptional: true}
	}
	if cfg.RefundNeedsDeviceID {
		refundRoute.headers = append(refundRoute.headers, "X-DEVICE-ID")
	}
	s.mux.HandleFunc("POST "+doku.PathRefund, s.transactional(doku.OpRefund, refundRoute, s.refund))
	s.mux.HandleFunc("POST "+doku.PathBinding, s.transactional(doku.OpBinding, route{headers: []string{"X-IP-ADDRESS", "X-DEVICE-ID"}}, s.binding))
	s.mux.HandleFunc("POST "+doku.PathBalance, s.transactional(doku.OpBalance, route{headers: []string{"X-IP-ADDRESS"}, customer: true}, s.balance))
	paymentRoute := route{headers: []string{"X-IP-ADDRESS"}, customer: true}
	if cfg.PaymentNeedsChannelID {
		paymentRoute.headers = append(paymentRoute.headers, "CHANNEL-ID")
	}
	s.mux.HandleFunc("POST "+doku.PathPayment, s.transactional(doku.OpPayment, paymentRoute, s.payment))
	s.mux.HandleFunc("POST "+doku.PathUnbinding, s.transactional(doku.OpUnbinding, route{headers: []string{"X-IP-ADDRESS"}}, s.unbinding))
	s.mux.HandleFunc("POST /sandbox/customers", s.handleCustomer)
	s.mux.HandleFunc("/sandbox/faults", s.handleFaults)
	s.mux.HandleFunc("/sandbox/clock", s.handleClock)
	s.mux.HandleFunc("GET /sandbox/confirm/{id}", s.handleConfirmPage)
	s.mux.HandleFunc("POST /sandbox/confirm/{id}", s.handleConfirmForm)
	s.mux.HandleFunc("POST /sandbox/confirmations/{id}", s.handleConfirmation)
	s.mux.HandleFunc("GET /sandbox/stats", s.handleStats)
	s.mux.HandleFunc("GET /sandbox/ledger", s.handleLedger)
	s.mux.HandleFunc("POST /sandbox/payments", s.handleCreatePayment)
	s.mux.HandleFunc("POST /sandbox/bindings", s.handleBindOutside)
	go s.loop()
	return s, nil
}

// Close stops the sandbox's background work and closes the ledger.
func (s *Server) Close() error {
	close(s.stop)
	<-s.done
	return s.ledger.close()
}

// ServeHTTP serves DOKU's endpoints and the sandbox's own /sandbox/ ones.
// The sandbox's own endpoints hold and move its ledger (authCodes, phone
// numbers), so a web page the operator happens to visit must not reach
// them: they answer only a Host that is an IP address or localhost (a
// DNS-rebound name is refused), no cross-origin request, and, for a POST
// other than the customer's confirmation form, only a JSON body (which a
// page cannot send across origins without a preflight nobody answers).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/sandbox/") {
		if why := adminRefusal(r); why != "" {
			http.Error(w, why, http.StatusForbidden)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// adminRefusal says why a request to a /sandbox/ endpoint is refused, or
// "" when it is not.
func adminRefusal(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
		return "the sandbox's own endpoints answer only an IP address or localhost as Host"
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			return "cross-origin requests to the sandbox's own endpoints are refused"
		}
	}
	if r.Method == http.MethodPost && !strings.HasPrefix(r.URL.Path, "/sandbox/confirm/") {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			return "the sandbox's own endpoints take a JSON body (Content-Type: application/json)"
		}
	}
	return ""
}

// Stats counts the requests that reached each operation, accepted or not.
type Stats struct {
	Calls map[string]int64 `json:"calls"`
}

// Stats returns the call counts so far.
func (s *Server) Stats() Stats {
	st := Stats{Calls: map[string]int64{}}
	for name, n := range s.calls {
		st.Calls[name] = n.Load()
	}
	return st
}

// Ledger returns everything the ledger holds.
func (s *Server) Ledger(ctx context.Context) (Ledger, error) { return s.ledger.snapshot(ctx) }

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) handleLedger(w http.ResponseWriter, r *http.Request) {
	l, err := s.Ledger(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// NewPayment is the body of POST /sandbox/payments: a payment the customer
// has already paid, so that refunds have something to refund.
type NewPayment struct {
	PartnerReferenceNo string          `json:"partnerReferenceNo"`
	Amount             json.RawMessage `json:"amount"` // "150000.00", "150000" or 150000
	Phone              string          `json:"phone"`
	CustIDMerchant     string          `json:"custIdMerchant,omitempty"`
}

var phoneRe = regexp.MustCompile(`^62[0-9]{7,14}$`)

// CreatePayment records a paid payment. Creating the same payment again is
// a no-op; another payment under an existing partnerReferenceNo is an error.
func (s *Server) CreatePayment(ctx context.Context, np NewPayment) (Payment, error) {
	var p Payment
	raw := strings.Trim(string(np.Amount), `"`)
	amount, err := money.Parse(raw)
	if err != nil || amount <= 0 {
		return p, fmt.Errorf("amount %s: want a positive IDR amount with at most two decimals", np.Amount)
	}
	if np.PartnerReferenceNo == "" || len(np.PartnerReferenceNo) > 64 {
		return p, errors.New("partnerReferenceNo: want 1 to 64 characters")
	}
	if !phoneRe.MatchString(np.Phone) {
		return p, fmt.Errorf("phone %q: want 62 followed by 7 to 14 digits", np.Phone)
	}
	tx, err := s.ledger.db.BeginTxx(ctx, nil)
	if err != nil {
		return p, err
	}
	defer tx.Rollback()
	old, err := getPayment(ctx, tx, np.PartnerReferenceNo, "")
	if err != nil {
		return p, err
	}
	if old != nil {
		if old.Amount != int64(amount) || old.Phone != np.Phone {
			return p, fmt.Errorf("payment %s exists with other details", np.PartnerReferenceNo)
		}
		return *old, nil
	}
	now := s.now().In(doku.ExternalIDZone)
	n, err := nextNumber(ctx, tx, "reference_no")
	if err != nil {
		return p, err
	}
	p = Payment{
		PartnerReferenceNo: np.PartnerReferenceNo,
		ReferenceNo:        fmt.Sprintf("%s%018d", now.Format("20060102"), n),
		Amount:             int64(amount),
		Phone:              np.Phone,
		CustIDMerchant:     np.CustIDMerchant,
		Status:             doku.TxSuccess,
		CreatedAt:          now.Format(time.RFC3339Nano),
		PaidTime:           now.Format(time.RFC3339),
	}
	if _, err := tx.NamedExecContext(ctx, `INSERT INTO payments VALUES (:partner_reference_no, :reference_no,
		:external_id, :amount, :phone, :cust_id_merchant, :status, :created_at, :paid_time)`, p); err != nil {
		return p, err
	}
	return p, tx.Commit()
}

func (s *Server) handleCreatePayment(w http.ResponseWriter, r *http.Request) {
	var np NewPayment
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&np); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	p, err := s.CreatePayment(r.Context(), np)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// answer is a SNAP answer: its HTTP status comes from its responseCode.
type answer struct {
	code Code
	body any // marshalled as is; nil means just responseCode and message
	msg  string
}

// Code is a local alias so answers read naturally.
type Code = doku.Code

func fail(op doku.Op, httpStatus int, caseCode, msg string) answer {
	return answer{code: doku.MakeCode(httpStatus, op.Service(), caseCode), msg: msg}
}

func (a answer) bytes() []byte {
	if a.body != nil {
		b, _ := doku.Marshal(a.body)
		return b
	}
	b, _ := doku.Marshal(doku.Result{ResponseCode: a.code, ResponseMessage: a.msg})
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := doku.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func (s *Server) count(op doku.Op) { s.calls[op.String()].Add(1) }

var externalIDRe = regexp.MustCompile(`^[0-9]{1,36}$`)

// handleTokenB2B issues a B2B access token to a request signed with the
// merchant's private key (docs/doku.md#b2b-token).
func (s *Server) handleTokenB2B(w http.ResponseWriter, r *http.Request) {
	op := doku.OpTokenB2B
	s.count(op)
	ft, f := s.draw(op)
	if injectBefore(w, op, ft, f) {
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	a := s.issueB2B(r.Header, body)
	if ft == faultDrop {
		drop(w)
		return
	}
	w.Header().Set("X-CLIENT-KEY", r.Header.Get("X-CLIENT-KEY"))
	w.Header().Set("X-TIMESTAMP", s.now().In(doku.ExternalIDZone).Format(doku.TimestampLayout))
	writeRaw(w, a.code.HTTPStatus(), a.bytes())
}

func (s *Server) issueB2B(h http.Header, body []byte) answer {
	op := doku.OpTokenB2B
	if a, ok := s.checkTokenRequest(op, h); !ok {
		return a
	}
	var req doku.TokenRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fail(op, 400, "00", "Bad Request")
	}
	if req.GrantType != "client_credentials" {
		return fail(op, 400, "01", "Invalid Field Format {grantType}")
	}
	tok, err := issueToken(s.cfg.DOKUPrivateKey, tokenClaims{
		Exp: s.now().Add(s.cfg.TokenLifetime).Unix(), Iss: "DOKU", ClientID: s.cfg.ClientID,
	})
	if err != nil {
		return fail(op, 500, "00", "General Error")
	}
	resp := doku.TokenResponse{
		Result:      doku.Result{ResponseCode: doku.MakeCode(200, op.Service(), "00"), ResponseMessage: "Successful"},
		AccessToken: tok, TokenType: "Bearer", ExpiresIn: doku.Seconds(s.cfg.TokenLifetime / time.Second),
	}
	return answer{code: resp.ResponseCode, body: resp}
}

// checkTokenRequest checks a token request's headers and its RSA
// signature by the merchant's key (docs/doku.md#asymmetric-signature).
func (s *Server) checkTokenRequest(op doku.Op, h http.Header) (answer, bool) {
	for _, name := range []string{"X-CLIENT-KEY", "X-TIMESTAMP", "X-SIGNATURE"} {
		if h.Get(name) == "" {
			return fail(op, 400, "02", "Invalid Mandatory Field {"+name+"}"), false
		}
	}
	if a, ok := s.checkTimestamp(op, h.Get("X-TIMESTAMP")); !ok {
		return a, false
	}
	if h.Get("X-CLIENT-KEY") != s.cfg.ClientID {
		return fail(op, 401, "00", "Unauthorized. Unknown client"), false
	}
	if doku.VerifyAsymmetric(s.cfg.MerchantPublicKey, h.Get("X-CLIENT-KEY"), h.Get("X-TIMESTAMP"), h.Get("X-SIGNATURE")) != nil {
		return fail(op, 401, "00", "Unauthorized.Invalid Signature"), false
	}
	return answer{}, true
}

// checkTimestamp checks X-TIMESTAMP's format and, with MaxSkew, its
// distance from the sandbox's clock.
func (s *Server) checkTimestamp(op doku.Op, ts string) (answer, bool) {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return fail(op, 400, "01", "Invalid Field Format {X-TIMESTAMP}"), false
	}
	if d := s.now().Sub(t); s.cfg.MaxSkew > 0 && (d > s.cfg.MaxSkew || d < -s.cfg.MaxSkew) {
		return fail(op, 401, "00", "Unauthorized. X-TIMESTAMP is outside the accepted window"), false
	}
	return answer{}, true
}

// call is a transactional request that passed the header, signature and
// token checks.
type call struct {
	op         doku.Op
	header     http.Header
	body       []byte
	externalID string
	now        time.Time
	base       string // this sandbox's URL as the caller reached it
	bindingID  int64  // from a valid customer token; 0 without one
}

// route says what an operation's requests carry beyond the common headers.
type route struct {
	headers []string
	// customer: Authorization-Customer (a B2B2C token of an active
	// binding) is required; customerOptional: checked when present.
	customer, customerOptional bool
}

type handler func(ctx context.Context, tx *sqlx.Tx, c *call) answer

// transactional wraps an operation in DOKU's checks, in DOKU's order
// (docs/doku.md#the-sandbox): headers, signature, token, X-EXTERNAL-ID replay; then the
// operation's own duplicate, field and business checks inside one ledger
// transaction, whose answer is kept for replays.
func (s *Server) transactional(op doku.Op, rt route, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count(op)
		ft, f := s.draw(op)
		if injectBefore(w, op, ft, f) {
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			a := fail(op, 400, "00", "Bad Request")
			writeRaw(w, a.code.HTTPStatus(), a.bytes())
			return
		}
		c := &call{op: op, header: r.Header, body: body, externalID: r.Header.Get("X-EXTERNAL-ID"), now: s.now(), base: "http://" + r.Host}
		status, out := s.serveCall(r.Context(), r, c, rt, h)
		if ft == faultDrop {
			// Processed and committed; the answer never arrives.
			drop(w)
			return
		}
		writeRaw(w, status, out)
	}
}

func (s *Server) serveCall(ctx context.Context, r *http.Request, c *call, rt route, h handler) (int, []byte) {
	if a, ok := s.checkRequest(r, c, rt); !ok {
		return a.code.HTTPStatus(), a.bytes()
	}
	// DOKU does not undo what it did because the caller hung up: the
	// ledger's work is not tied to the request's context.
	ctx = context.WithoutCancel(ctx)
	internal := fail(c.op, 500, "01", "Internal Server Error")
	tx, err := s.ledger.db.BeginTxx(ctx, nil)
	if err != nil {
		return internal.code.HTTPStatus(), internal.bytes()
	}
	defer tx.Rollback()
	day := c.now.In(s.cfg.ExternalIDZone).Format(time.DateOnly)
	hash := doku.BodyHash(c.body)
	var prior struct {
		BodyHash string `db:"body_hash"`
		Response []byte `db:"response"`
	}
	err = tx.GetContext(ctx, &prior, `SELECT body_hash, response FROM replays WHERE day = ? AND external_id = ?`, day, c.externalID)
	switch {
	case err == nil && prior.BodyHash == hash:
		// The same request again: the same answer, with HTTP 409 (docs/doku.md#idempotency).
		return http.StatusConflict, prior.Response
	case err == nil:
		a := fail(c.op, 409, "00", "Conflict")
		return a.code.HTTPStatus(), a.bytes()
	case !errors.Is(err, sql.ErrNoRows):
		return internal.code.HTTPStatus(), internal.bytes()
	}
	// A refusal changes nothing but is remembered for replays: the
	// handler's writes are undone inside this same transaction, so no other
	// request with this X-EXTERNAL-ID can slip in between.
	if _, err := tx.ExecContext(ctx, `SAVEPOINT handler`); err != nil {
		return internal.code.HTTPStatus(), internal.bytes()
	}
	a := h(ctx, tx, c)
	status := a.code.HTTPStatus()
	if status >= 500 {
		// Nothing the handler wrote stands, and nothing is kept for a replay.
		return status, a.bytes()
	}
	if status >= 300 {
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO handler`); err != nil {
			return internal.code.HTTPStatus(), internal.bytes()
		}
	}
	out := a.bytes()
	if _, err := tx.ExecContext(ctx, `INSERT INTO replays VALUES (?, ?, ?, ?, ?, ?)`,
		day, c.externalID, c.op.String(), hash, status, out); err != nil {
		return internal.code.HTTPStatus(), internal.bytes()
	}
	if err := tx.Commit(); err != nil {
		return internal.code.HTTPStatus(), internal.bytes()
	}
	return status, out
}

// checkRequest makes the checks that come before the ledger: headers,
// signature, token.
func (s *Server) checkRequest(r *http.Request, c *call, rt route) (answer, bool) {
	op, h := c.op, r.Header
	for _, name := range append([]string{"X-TIMESTAMP", "X-SIGNATURE", "X-PARTNER-ID", "X-EXTERNAL-ID"}, rt.headers...) {
		if h.Get(name) == "" {
			return fail(op, 400, "02", "Invalid Mandatory Field {"+name+"}"), false
		}
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		return fail(op, 400, "00", "Bad Request. Content-Type must be application/json"), false
	}
	ts := h.Get("X-TIMESTAMP")
	if a, ok := s.checkTimestamp(op, ts); !ok {
		return a, false
	}
	if !externalIDRe.MatchString(c.externalID) {
		return fail(op, 400, "01", "Invalid Field Format {X-EXTERNAL-ID}"), false
	}
	if ip := h.Get("X-IP-ADDRESS"); ip != "" && !validIP(ip) {
		return fail(op, 400, "01", "Invalid Field Format {X-IP-ADDRESS}"), false
	}
	if d := h.Get("X-DEVICE-ID"); d != "" && !validDeviceID(d) {
		return fail(op, 400, "01", "Invalid Field Format {X-DEVICE-ID}"), false
	}
	if h.Get("X-PARTNER-ID") != s.cfg.ClientID {
		return fail(op, 401, "00", "Unauthorized. Unknown partner"), false
	}
	token, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return fail(op, 401, "03", "Token Not Found (B2B)"), false
	}
	path := r.URL.Path
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	if !doku.VerifySymmetric(s.cfg.ClientSecret.Reveal(), r.Method, path, token, doku.Minify(c.body), ts, h.Get("X-SIGNATURE")) {
		return fail(op, 401, "00", "Unauthorized. Invalid Signature"), false
	}
	claims, err := verifyToken(&s.cfg.DOKUPrivateKey.PublicKey, token, c.now)
	if err != nil || claims.ClientID != s.cfg.ClientID || claims.AccountID != "" {
		return fail(op, 401, "01", "Invalid Token (B2B)"), false
	}
	if cust := h.Get("Authorization-Customer"); rt.customer || (rt.customerOptional && cust != "") {
		// With or without "Bearer ": the SDKs disagree. "Bearer " with
		// nothing after it (which arrives as "Bearer") is no token.
		cust = strings.TrimSpace(cust)
		if v, ok := strings.CutPrefix(cust, "Bearer"); ok && (v == "" || v[0] == ' ') {
			cust = strings.TrimSpace(v)
		}
		if cust == "" {
			return fail(op, 401, "04", "Customer Token Not Found"), false
		}
		// DOKU does not undo work because its caller hung up.
		id, ok := s.activeBinding(context.WithoutCancel(r.Context()), cust, c.now)
		if !ok {
			return fail(op, 401, "02", "Invalid Customer Token"), false
		}
		c.bindingID = id
	}
	return answer{}, true
}

func (s *Server) stamp(t time.Time) string {
	return t.In(doku.ExternalIDZone).Format(doku.TimestampLayout)
}

// validIP is Allo's X-IP-ADDRESS rule: a dotted IPv4 address of 10 to 15
// characters.
func validIP(s string) bool {
	if len(s) < 10 || len(s) > 15 {
		return false
	}
	ip, err := netip.ParseAddr(s)
	return err == nil && ip.Is4()
}
