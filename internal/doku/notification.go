package doku

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/secret"
)

// The merchant's side of DOKU's payment notifications:
// the token endpoint DOKU calls before notifying (docs/doku.md#merchant-token-endpoint), the check of a
// notification (docs/doku.md#notification-signature), its body (docs/doku.md#notifications) and the answer (docs/doku.md#notification-answer).

// receiverTokenIssuer is the iss claim of the tokens a Receiver issues.
const receiverTokenIssuer = "ddctl"

// AsymmetricTransactionStringToSign builds METHOD:path:bodyHash:timestamp,
// the asymmetric transactional form that DOKU signs its requests to a
// merchant with; path is the merchant's own (docs/doku.md#notification-signature). It has no token.
func AsymmetricTransactionStringToSign(method, path string, body []byte, timestamp string) string {
	return strings.ToUpper(method) + ":" + path + ":" + BodyHash(body) + ":" + timestamp
}

// SignAsymmetricTransaction is the X-SIGNATURE of the asymmetric
// transactional form: standard Base64 of RSASSA-PKCS1-v1_5 over SHA-256 of
// AsymmetricTransactionStringToSign (docs/doku.md#notification-signature). DOKU signs with its private key;
// the sandbox signs its notifications with this.
func SignAsymmetricTransaction(key *rsa.PrivateKey, method, path string, body []byte, timestamp string) (string, error) {
	sum := sha256.Sum256([]byte(AsymmetricTransactionStringToSign(method, path, body, timestamp)))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifyAsymmetricTransaction checks an asymmetric transactional
// X-SIGNATURE with the signer's public key. It returns ErrBadSignature for a
// signature that does not verify or is not Base64.
func VerifyAsymmetricTransaction(key *rsa.PublicKey, method, path string, body []byte, timestamp, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return ErrBadSignature
	}
	sum := sha256.Sum256([]byte(AsymmetricTransactionStringToSign(method, path, body, timestamp)))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return ErrBadSignature
	}
	return nil
}

// NotificationMode is how a Receiver checks a notification's X-SIGNATURE.
// docs/doku.md#notification-signature gives three readings; a Receiver
// uses exactly the one configured, never whichever happens to pass
// (README.md, "The daemon"). Which bearer token it takes is a separate
// setting, NotificationToken.
type NotificationMode string

// The three readings of docs/doku.md#notification-signature.
const (
	// ModeAsymmetric: RSASSA-PKCS1-v1_5 SHA-256 by DOKU's private key over
	// AsymmetricTransactionStringToSign with the merchant's path, verified
	// with DOKU's public key.
	ModeAsymmetric NotificationMode = "asymmetric"
	// ModeSymmetric: HMAC-SHA512 with the client secret over
	// METHOD:path:accessToken:bodyHash:timestamp (SymmetricStringToSign),
	// with the merchant's path and the notification's own bearer token, as
	// DOKU documents its SNAP notifications:
	// https://developers.doku.com/get-started-with-doku-api/notification/http-notification-sample-for-snap
	ModeSymmetric NotificationMode = "symmetric"
	// ModeTokenOnly: X-SIGNATURE is ignored; only the bearer token counts,
	// as the Go, Java and Python SDKs do. It needs TokenIssued.
	ModeTokenOnly NotificationMode = "token-only"
)

func (m NotificationMode) String() string { return string(m) }

// NotificationToken is which bearer token a Receiver takes on a
// notification. It is a setting of its own, beside NotificationMode: in
// ModeSymmetric the token is part of what X-SIGNATURE signs, so a
// notification whose HMAC verifies is DOKU's whichever token it carries.
type NotificationToken string

const (
	// TokenIssued: the bearer token must be one this Receiver issued
	// (ServeToken), for its client ID, not expired. DOKU documents the
	// notification's Authorization as the access token from the Get B2B
	// Token API, that is the merchant's token endpoint DOKU calls first:
	// https://developers.doku.com/get-started-with-doku-api/notification/http-notification-sample-for-snap
	TokenIssued NotificationToken = "required"
	// TokenAny: any bearer token is taken, but the Authorization header
	// must be there, "Bearer" and a token of RFC 6750's b64token
	// characters: in ModeSymmetric it is signed. Only X-SIGNATURE then
	// authenticates a notification, so TokenAny is refused with
	// ModeTokenOnly and with SignatureOptional.
	TokenAny NotificationToken = "any"
)

func (t NotificationToken) String() string { return string(t) }

// CheckNotificationSettings refuses a mode, token setting and
// SignatureOptional that are unknown, or that together would let a
// notification through that nothing authenticates. NewReceiver calls it;
// a caller may call it first, to refuse its flags before anything else.
// Empty mode and token stand for their defaults.
func CheckNotificationSettings(mode NotificationMode, token NotificationToken, signatureOptional bool) error {
	mode, token = cmp.Or(mode, DefaultNotificationMode), cmp.Or(token, DefaultNotificationToken)
	switch {
	case mode != ModeAsymmetric && mode != ModeSymmetric && mode != ModeTokenOnly:
		return fmt.Errorf("notification mode %q is unknown: want %q, %q or %q", mode, ModeAsymmetric, ModeSymmetric, ModeTokenOnly)
	case token != TokenIssued && token != TokenAny:
		return fmt.Errorf("notification token %q is unknown: want %q (a token this receiver issued) or %q", token, TokenIssued, TokenAny)
	case mode == ModeTokenOnly && token == TokenAny:
		return fmt.Errorf("notification mode %q ignores X-SIGNATURE and token %q takes any bearer token: nothing would authenticate a notification, so anyone could send one; require the token (%q) or verify X-SIGNATURE (mode %q or %q)",
			ModeTokenOnly, TokenAny, TokenIssued, ModeSymmetric, ModeAsymmetric)
	case signatureOptional && token == TokenAny:
		return fmt.Errorf("an optional X-SIGNATURE with notification token %q would take a notification without a signature on a token nobody checks, so anyone could send one; require the token (%q) or the signature", TokenAny, TokenIssued)
	}
	return nil
}

// ReceiverConfig is what a Receiver needs.
type ReceiverConfig struct {
	ClientID      string           // the merchant's client ID: X-CLIENT-KEY, X-PARTNER-ID
	ClientSecret  secret.Value     // HMAC key; required in ModeSymmetric
	DOKUPublicKey *rsa.PublicKey   // verifies DOKU's token requests and, in ModeAsymmetric, notifications
	SigningKey    *rsa.PrivateKey  // the merchant's key; signs the tokens the Receiver issues
	Mode          NotificationMode // default DefaultNotificationMode
	// Token is which bearer token a notification may carry; default
	// DefaultNotificationToken.
	Token NotificationToken
	// SignatureOptional lets a notification without X-SIGNATURE through in
	// ModeAsymmetric and ModeSymmetric, on its bearer token alone; one that
	// carries X-SIGNATURE must still verify in Mode. It has no effect in
	// ModeTokenOnly, and needs TokenIssued.
	SignatureOptional bool
	TokenLifetime     time.Duration // default DefaultReceiverTokenLifetime
	MaxSkew           time.Duration // default DefaultMaxSkew
	NowFunc           func() time.Time
}

// Receiver is the merchant's side of DOKU's notifications: it issues access
// tokens to DOKU (ServeToken) and checks the notifications that carry them
// (Verify). It keeps no state, so tokens outlive a restart, and it is safe
// for concurrent use.
type Receiver struct {
	cfg ReceiverConfig
	now func() time.Time
}

// NewReceiver checks cfg, fills in the defaults and returns a Receiver.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	cfg.Mode = cmp.Or(cfg.Mode, DefaultNotificationMode)
	cfg.Token = cmp.Or(cfg.Token, DefaultNotificationToken)
	cfg.TokenLifetime = cmp.Or(cfg.TokenLifetime, DefaultReceiverTokenLifetime)
	cfg.MaxSkew = cmp.Or(cfg.MaxSkew, DefaultMaxSkew)
	switch {
	case cfg.ClientID == "":
		return nil, errors.New("doku receiver: client ID is empty")
	case cfg.DOKUPublicKey == nil:
		return nil, errors.New("doku receiver: no DOKU public key to verify token requests with")
	case cfg.SigningKey == nil:
		return nil, errors.New("doku receiver: no signing key for the tokens it issues")
	}
	if err := CheckNotificationSettings(cfg.Mode, cfg.Token, cfg.SignatureOptional); err != nil {
		return nil, fmt.Errorf("doku receiver: %w", err)
	}
	switch {
	case cfg.Mode == ModeSymmetric && cfg.ClientSecret.IsZero():
		return nil, fmt.Errorf("doku receiver: notification mode %q verifies X-SIGNATURE with the client secret, and none was given: give the client secret (the doku block's client_secret), or choose mode %q", ModeSymmetric, ModeAsymmetric)
	case cfg.TokenLifetime < time.Second:
		return nil, fmt.Errorf("doku receiver: token lifetime %v is under a second", cfg.TokenLifetime)
	case cfg.MaxSkew < 0:
		return nil, fmt.Errorf("doku receiver: negative clock skew %v", cfg.MaxSkew)
	}
	r := &Receiver{cfg: cfg, now: cfg.NowFunc}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// ServeToken is the merchant's POST /authorization/v1/access-token/b2b that
// DOKU calls before notifying (docs/doku.md#merchant-token-endpoint): X-CLIENT-KEY must be the client ID,
// X-TIMESTAMP within MaxSkew, X-SIGNATURE DOKU's signature of
// clientId|timestamp (docs/doku.md#asymmetric-signature) and grantType client_credentials. It answers
// 2007300 with an RS256 JWT signed by SigningKey, or a SNAP refusal.
func (r *Receiver) ServeToken(w http.ResponseWriter, req *http.Request) {
	now := r.now()
	w.Header().Set("X-TIMESTAMP", now.In(ExternalIDZone).Format(TimestampLayout))
	resp, bad := r.issue(req, now)
	if bad != nil {
		writeCode(w, bad.Code, bad.Reason)
		return
	}
	w.Header().Set("X-CLIENT-KEY", r.cfg.ClientID)
	b, err := Marshal(resp)
	if err != nil {
		writeCode(w, CodeTokenGeneralError, "General Error")
		return
	}
	writeAnswer(w, http.StatusOK, b)
}

func (r *Receiver) issue(req *http.Request, now time.Time) (*TokenResponse, *NotificationError) {
	h := req.Header
	for _, name := range []string{"X-CLIENT-KEY", "X-TIMESTAMP", "X-SIGNATURE"} {
		if h.Get(name) == "" {
			return nil, refusal(CodeTokenMissingField, "Invalid Mandatory Field {"+name+"}")
		}
	}
	clientID, ts := h.Get("X-CLIENT-KEY"), h.Get("X-TIMESTAMP")
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return nil, refusal(CodeTokenBadFormat, "Invalid Field Format {X-TIMESTAMP}")
	}
	if !ctEqual(clientID, r.cfg.ClientID) {
		return nil, refusal(CodeTokenUnauthorized, "Unauthorized. Unknown client")
	}
	if !r.fresh(t, now) {
		return nil, refusal(CodeTokenUnauthorized, "Unauthorized. X-TIMESTAMP out of range")
	}
	if VerifyAsymmetric(r.cfg.DOKUPublicKey, clientID, ts, h.Get("X-SIGNATURE")) != nil {
		return nil, refusal(CodeTokenUnauthorized, "Unauthorized.Invalid Signature")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody))
	if err != nil {
		return nil, refusal(CodeTokenBadRequest, "Bad Request")
	}
	var tr TokenRequest
	if json.Unmarshal(body, &tr) != nil {
		return nil, refusal(CodeTokenBadRequest, "Bad Request")
	}
	switch tr.GrantType {
	case "client_credentials":
	case "":
		return nil, refusal(CodeTokenMissingField, "Invalid Mandatory Field {grantType}")
	default:
		return nil, refusal(CodeTokenBadFormat, "Invalid Field Format {grantType}")
	}
	tok, err := issueReceiverJWT(r.cfg.SigningKey, receiverClaims{
		Exp: now.Add(r.cfg.TokenLifetime).Unix(), Iss: receiverTokenIssuer, ClientID: r.cfg.ClientID,
	})
	if err != nil {
		return nil, refusal(CodeTokenGeneralError, "General Error")
	}
	return &TokenResponse{
		Result:      Result{ResponseCode: CodeTokenIssued, ResponseMessage: "Successful"},
		AccessToken: tok,
		TokenType:   "Bearer",
		ExpiresIn:   Seconds(r.cfg.TokenLifetime / time.Second),
	}, nil
}

// Verify checks a notification and parses its body, which the caller has
// read (bounded) from req: the bearer token must be there and, with
// TokenIssued, one this Receiver issued and not expired, X-TIMESTAMP within MaxSkew, X-PARTNER-ID (if
// sent) the client ID, X-EXTERNAL-ID present, and X-SIGNATURE valid in the
// configured Mode over the exact body bytes and req's path (as received: a
// proxy that rewrites the path breaks the signature). Every refusal is a
// *NotificationError, whose text never holds the token, the secret or the
// body. Verify does not de-duplicate: that is the caller's, by ExternalID
// and DedupKey.
func (r *Receiver) Verify(req *http.Request, body []byte) (*Notification, error) {
	now := r.now()
	h := req.Header
	token, terr := r.bearer(req, now)
	if terr != nil {
		return nil, terr
	}
	ts := h.Get("X-TIMESTAMP")
	if ts == "" {
		return nil, refusal(CodeNotifyMissingField, "Invalid Mandatory Field {X-TIMESTAMP}")
	}
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return nil, refusal(CodeNotifyBadFormat, "Invalid Field Format {X-TIMESTAMP}")
	}
	if !r.fresh(t, now) {
		return nil, refusal(CodeNotifyUnauthorized, "X-TIMESTAMP out of range")
	}
	if p := h.Get("X-PARTNER-ID"); p != "" && !ctEqual(p, r.cfg.ClientID) {
		return nil, refusal(CodeNotifyUnauthorized, "X-PARTNER-ID is not the client ID")
	}
	externalID := h.Get("X-EXTERNAL-ID")
	if externalID == "" {
		return nil, refusal(CodeNotifyMissingField, "Invalid Mandatory Field {X-EXTERNAL-ID}")
	}
	signed, serr := r.checkSignature(req, token, body, ts)
	if serr != nil {
		return nil, serr
	}
	n, err := ParseNotification(body)
	if err != nil {
		return nil, err
	}
	n.ExternalID, n.Signed = externalID, signed
	return n, nil
}

// checkSignature checks X-SIGNATURE in the configured mode; signed says
// whether one was there and verified.
func (r *Receiver) checkSignature(req *http.Request, token string, body []byte, ts string) (signed bool, _ *NotificationError) {
	if r.cfg.Mode == ModeTokenOnly {
		return false, nil
	}
	sig := req.Header.Get("X-SIGNATURE")
	if sig == "" {
		if r.cfg.SignatureOptional {
			return false, nil
		}
		return false, refusal(CodeNotifyMissingField, "Invalid Mandatory Field {X-SIGNATURE}")
	}
	path := req.URL.Path
	if req.URL.RawQuery != "" {
		path += "?" + req.URL.RawQuery
	}
	var ok bool
	switch r.cfg.Mode {
	case ModeAsymmetric:
		ok = VerifyAsymmetricTransaction(r.cfg.DOKUPublicKey, req.Method, path, body, ts, sig) == nil
	case ModeSymmetric:
		// DOKU hashes the minified body (docs/doku.md#symmetric-signature):
		// whitespace between JSON tokens is not signed, every byte of a
		// value is. A body that is not JSON is hashed as it came (and
		// refused as malformed after).
		ok = VerifySymmetric(r.cfg.ClientSecret.Reveal(), req.Method, path, token, Minify(body), ts, sig)
	}
	if !ok {
		return false, refusal(CodeNotifyUnauthorized, "X-SIGNATURE does not verify in "+r.cfg.Mode.String()+" mode")
	}
	return true, nil
}

// CheckBearer checks a notification's bearer token alone, as Verify does
// first: a caller checks it before it reads the body, so that nothing of a
// request without a token this Receiver takes (with TokenIssued, one it
// issued) is read.
func (r *Receiver) CheckBearer(req *http.Request) error {
	if _, err := r.bearer(req, r.now()); err != nil {
		return err
	}
	return nil
}

func (r *Receiver) bearer(req *http.Request, now time.Time) (string, *NotificationError) {
	scheme, token, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", refusal(CodeNotifyInvalidToken, "no bearer token")
	}
	if r.cfg.Token == TokenAny {
		if !b64token(token) {
			return "", refusal(CodeNotifyInvalidToken, "bearer token is not a token (RFC 6750 b64token)")
		}
		return token, nil
	}
	if err := r.checkToken(token, now); err != nil {
		return "", err
	}
	return token, nil
}

// checkToken accepts only a token this Receiver's key signed, for its
// client ID, not yet expired.
func (r *Receiver) checkToken(token string, now time.Time) *NotificationError {
	c, err := verifyReceiverJWT(&r.cfg.SigningKey.PublicKey, token)
	switch {
	case err != nil:
		return refusal(CodeNotifyInvalidToken, "bearer token was not issued by this receiver")
	case !ctEqual(c.Iss, receiverTokenIssuer) || !ctEqual(c.ClientID, r.cfg.ClientID):
		return refusal(CodeNotifyInvalidToken, "bearer token was issued for another client")
	case now.Unix() >= c.Exp:
		return refusal(CodeNotifyInvalidToken, "bearer token expired")
	}
	return nil
}

// b64token reports whether s is a b64token of RFC 6750 (section 2.1): one
// or more of A-Z a-z 0-9 - . _ ~ + /, then any number of =. A token taken
// unchecked (TokenAny) thus holds no ':', the separator of what ModeSymmetric
// signs, nor spaces or control characters.
func b64token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		b := s[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || strings.IndexByte("-._~+/", b) >= 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// fresh reports whether t is within MaxSkew of now, either way.
func (r *Receiver) fresh(t, now time.Time) bool {
	// No absolute value: Sub saturates, and -minDuration overflows.
	d := now.Sub(t)
	return d <= r.cfg.MaxSkew && d >= -r.cfg.MaxSkew
}

// ctEqual compares a and b in time that depends only on their lengths.
func ctEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// NotificationError is a refused token request or notification, with the
// SNAP answer that says so: Respond writes it. Reason says what was wrong
// without quoting the token, the secret or the body.
type NotificationError struct {
	Reason     string
	HTTPStatus int
	Code       Code
}

func refusal(code Code, reason string) *NotificationError {
	return &NotificationError{Reason: reason, HTTPStatus: code.HTTPStatus(), Code: code}
}

func (e *NotificationError) Error() string {
	return fmt.Sprintf("doku notification refused (%s): %s", e.Code, e.Reason)
}

// Respond writes the refusal as DOKU expects it: HTTP status and SNAP
// responseCode, with the case's standard message (docs/doku.md#response-codes), not the Reason.
// Any answer but 2xx makes DOKU retry later (docs/doku.md#notification-retries).
func (e *NotificationError) Respond(w http.ResponseWriter) {
	writeCode(w, e.Code, caseMessage(e.Code))
}

// caseMessage is SNAP's message for the codes a Receiver answers (docs/doku.md#response-codes).
func caseMessage(c Code) string {
	switch {
	case c.HTTPStatus() == 400 && c.Case() == "01":
		return "Invalid Field Format"
	case c.HTTPStatus() == 400 && c.Case() == "02":
		return "Invalid Mandatory Field"
	case c.HTTPStatus() == 400:
		return "Bad Request"
	case c.HTTPStatus() == 401 && c.Case() == "01":
		return "Invalid Token (B2B)"
	case c.HTTPStatus() == 401:
		return "Unauthorized"
	case c.HTTPStatus() == 409:
		return "Conflict"
	case c.HTTPStatus() == 429:
		return "Too Many Requests"
	}
	return "General Error"
}

// Ack acknowledges a notification: HTTP 200 with 2005600 (docs/doku.md#notification-answer). Persist
// the notification first; any 2xx tells DOKU not to send it again.
func Ack(w http.ResponseWriter) {
	writeCode(w, CodeNotifyAck, "Successful")
}

func writeCode(w http.ResponseWriter, code Code, msg string) {
	b, err := Marshal(Result{ResponseCode: code, ResponseMessage: msg})
	if err != nil {
		// A Result of two strings always encodes.
		panic(err)
	}
	status := code.HTTPStatus()
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeAnswer(w, status, b)
}

func writeAnswer(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// Notification is DOKU's payment notification (docs/doku.md#notifications), with DOKU's JSON
// names, plus the X-EXTERNAL-ID it came with.
type Notification struct {
	OriginalPartnerReferenceNo string           `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        string           `json:"originalReferenceNo,omitempty"`
	OriginalExternalID         string           `json:"originalExternalId,omitempty"`
	LatestTransactionStatus    string           `json:"latestTransactionStatus"`
	TransactionStatusDesc      string           `json:"transactionStatusDesc,omitempty"`
	Amount                     Amount           `json:"amount"`
	AdditionalInfo             NotificationInfo `json:"additionalInfo"`

	// ExternalID is the notification's own X-EXTERNAL-ID header, set by
	// Verify: DOKU's id of this request. De-duplicate on it and on
	// DedupKey (docs/doku.md#notifications): whether a retry keeps it is not documented.
	ExternalID string `json:"-"`
	// Signed is set by Verify when X-SIGNATURE was present and verified.
	// A notification taken on its bearer token alone (ModeTokenOnly,
	// SignatureOptional) has it false, and never settles money by itself.
	Signed bool `json:"-"`
}

// NotificationInfo is a notification's additionalInfo (docs/doku.md#notifications). All of it is
// optional; lineItems and origin are not kept.
type NotificationInfo struct {
	CustIDMerchant string `json:"custIdMerchant,omitempty"`
	AccountType    string `json:"accountType,omitempty"`
	ChannelID      string `json:"channelId,omitempty"`
	Channel        string `json:"channel,omitempty"` // the Java SDK's name for channelId
	AcquirerID     string `json:"acquirerId,omitempty"`
}

// DedupKey identifies the event a notification reports, the same on every
// retry of it (docs/doku.md#notification-retries): originalPartnerReferenceNo and
// latestTransactionStatus. The status is always two digits, so the key is
// unambiguous.
func (n *Notification) DedupKey() string {
	return n.OriginalPartnerReferenceNo + ":" + n.LatestTransactionStatus
}

// notificationWire is what ParseNotification decodes: the required fields
// strictly, the optional ones as raw JSON, so that an optional field of an
// unexpected type (a number, "" for an object) never costs a notification.
type notificationWire struct {
	OriginalPartnerReferenceNo *string         `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        json.RawMessage `json:"originalReferenceNo"`
	OriginalExternalID         json.RawMessage `json:"originalExternalId"`
	LatestTransactionStatus    *string         `json:"latestTransactionStatus"`
	TransactionStatusDesc      json.RawMessage `json:"transactionStatusDesc"`
	Amount                     *struct {
		Value    *string `json:"value"`
		Currency *string `json:"currency"`
	} `json:"amount"`
	AdditionalInfo json.RawMessage `json:"additionalInfo"`
}

// ParseNotification reads a notification body (docs/doku.md#notifications). Unknown fields are
// ignored, as DOKU adds fields at will (docs/doku.md#wire-format); optional fields of an
// unexpected type are left empty. originalPartnerReferenceNo must be
// non-empty, latestTransactionStatus two digits and amount a valid IDR
// amount. A key given twice in one object, in any mix of case, is refused:
// Go would take the last, another reader the first, and a signature is
// over the bytes, not over what one reader makes of them. Errors are
// *NotificationError (HTTP 400) and never quote the body.
func ParseNotification(body []byte) (*Notification, error) {
	if key, ok := duplicateKey(body); ok {
		return nil, refusal(CodeNotifyBadRequest, "a key appears twice in one object: "+notificationField(key))
	}
	var w notificationWire
	if err := json.Unmarshal(body, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, refusal(CodeNotifyBadFormat, "Invalid Field Format {"+notificationField(te.Field)+"}")
		}
		return nil, refusal(CodeNotifyBadRequest, "body is not a JSON object")
	}
	switch {
	case w.OriginalPartnerReferenceNo == nil || *w.OriginalPartnerReferenceNo == "":
		return nil, refusal(CodeNotifyMissingField, "Invalid Mandatory Field {originalPartnerReferenceNo}")
	case w.LatestTransactionStatus == nil || *w.LatestTransactionStatus == "":
		return nil, refusal(CodeNotifyMissingField, "Invalid Mandatory Field {latestTransactionStatus}")
	case !twoDigitStatus(*w.LatestTransactionStatus):
		return nil, refusal(CodeNotifyBadFormat, "Invalid Field Format {latestTransactionStatus}")
	case w.Amount == nil:
		return nil, refusal(CodeNotifyMissingField, "Invalid Mandatory Field {amount}")
	case w.Amount.Value == nil || *w.Amount.Value == "":
		return nil, refusal(CodeNotifyMissingField, "Invalid Mandatory Field {amount.value}")
	case w.Amount.Currency == nil || *w.Amount.Currency == "":
		return nil, refusal(CodeNotifyMissingField, "Invalid Mandatory Field {amount.currency}")
	}
	n := &Notification{
		OriginalPartnerReferenceNo: *w.OriginalPartnerReferenceNo,
		OriginalReferenceNo:        looseString(w.OriginalReferenceNo),
		OriginalExternalID:         looseString(w.OriginalExternalID),
		LatestTransactionStatus:    *w.LatestTransactionStatus,
		TransactionStatusDesc:      looseString(w.TransactionStatusDesc),
		Amount:                     Amount{Value: *w.Amount.Value, Currency: *w.Amount.Currency},
	}
	if _, err := n.Amount.Money(); err != nil {
		return nil, refusal(CodeNotifyBadFormat, "Invalid Field Format {amount}")
	}
	if len(w.AdditionalInfo) > 0 && w.AdditionalInfo[0] == '{' {
		var info struct {
			CustIDMerchant json.RawMessage `json:"custIdMerchant"`
			AccountType    json.RawMessage `json:"accountType"`
			ChannelID      json.RawMessage `json:"channelId"`
			Channel        json.RawMessage `json:"channel"`
			AcquirerID     json.RawMessage `json:"acquirerId"`
		}
		if json.Unmarshal(w.AdditionalInfo, &info) == nil {
			n.AdditionalInfo = NotificationInfo{
				CustIDMerchant: looseString(info.CustIDMerchant),
				AccountType:    looseString(info.AccountType),
				ChannelID:      looseString(info.ChannelID),
				Channel:        looseString(info.Channel),
				AcquirerID:     looseString(info.AcquirerID),
			}
		}
	}
	return n, nil
}

// notificationField names the required field a decoding error is about
// (encoding/json gives its JSON path); anything else is "body".
func notificationField(path string) string {
	switch path {
	case "originalPartnerReferenceNo", "latestTransactionStatus", "amount", "amount.value", "amount.currency":
		return path
	}
	return "body"
}

// looseString is a JSON string's value, a JSON number's text, or "".
func looseString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func twoDigitStatus(s string) bool {
	return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9'
}

// The tokens a Receiver issues are RS256 JWTs with claims exp, iss and
// clientId (docs/doku.md#merchant-token-endpoint). Only the Receiver reads them, so only its own exact
// header and canonical Base64 are accepted.

type receiverClaims struct {
	Exp      int64  `json:"exp"`
	Iss      string `json:"iss"`
	ClientID string `json:"clientId"`
}

var receiverJWTHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))

// receiverJWTEncoding refuses non-zero padding bits, so one signature has one
// spelling.
var receiverJWTEncoding = base64.RawURLEncoding.Strict()

var errReceiverJWT = errors.New("token invalid")

func issueReceiverJWT(key *rsa.PrivateKey, c receiverClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := receiverJWTHeader + "." + receiverJWTEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + receiverJWTEncoding.EncodeToString(sig), nil
}

func verifyReceiverJWT(key *rsa.PublicKey, token string) (receiverClaims, error) {
	var c receiverClaims
	for i := 0; i < len(token); i++ {
		// Base64 decoders skip \r and \n; refuse them, and anything else
		// outside the URL alphabet, so a token has one spelling.
		b := token[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return c, errReceiverJWT
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != receiverJWTHeader {
		return c, errReceiverJWT
	}
	sig, err := receiverJWTEncoding.DecodeString(parts[2])
	if err != nil {
		return c, errReceiverJWT
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig) != nil {
		return c, errReceiverJWT
	}
	payload, err := receiverJWTEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return c, errReceiverJWT
	}
	return c, nil
}

// duplicateKey reports a key that appears twice in one JSON object of
// body, compared without regard to case (as encoding/json matches
// fields). Malformed JSON reports none: the parser refuses it.
func duplicateKey(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type object struct {
		keys   map[string]bool
		expect bool // the next string token is a key
	}
	var stack []*object
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				if top != nil {
					top.expect = true
				}
				stack = append(stack, &object{keys: map[string]bool{}, expect: true})
			case '[':
				if top != nil {
					top.expect = true
				}
				stack = append(stack, nil)
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.expect {
				k := strings.ToLower(v)
				if top.keys[k] {
					return v, true
				}
				top.keys[k] = true
				top.expect = false
				continue
			}
		}
		if top != nil {
			top.expect = true // a value ended: a key comes next
		}
	}
}
