package doku_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/secret"
)

const (
	notifyClientID = "BRN-0123-1700000000000"
	notifySecret   = "notify-test-secret-0001"
	notifyPath     = "/v1.0/debit/notify"
	notifyExtID    = "482133779065112233445"
	// A notification as DOKU documents it, compact as DOKU would send it.
	notifyBody = `{"originalPartnerReferenceNo":"ORD-7F3A91C2E55B40D8A1C6B2E9F0D4A7B3","originalReferenceNo":"20250314000000000054913372","originalExternalId":"48213377906511223344","latestTransactionStatus":"00","transactionStatusDesc":"Success","amount":{"value":"25000.00","currency":"IDR"},"additionalInfo":{"custIdMerchant":"cust-00042","accountType":"DIRECT_DEBIT"}}`
)

// notifyStart is the receivers' clock at the start of every test.
var notifyStart = time.Date(2026, 3, 14, 3, 15, 30, 0, time.UTC)

// wantNotification is notifyBody parsed.
var wantNotification = doku.Notification{
	OriginalPartnerReferenceNo: "ORD-7F3A91C2E55B40D8A1C6B2E9F0D4A7B3",
	OriginalReferenceNo:        "20250314000000000054913372",
	OriginalExternalID:         "48213377906511223344",
	LatestTransactionStatus:    "00",
	TransactionStatusDesc:      "Success",
	Amount:                     doku.Amount{Value: "25000.00", Currency: "IDR"},
	AdditionalInfo:             doku.NotificationInfo{CustIDMerchant: "cust-00042", AccountType: "DIRECT_DEBIT"},
}

// notifyKeys are DOKU's key pair, the merchant's (which signs the tokens
// the Receiver issues) and an unrelated one.
type notifyKeys struct{ doku, merchant, other *rsa.PrivateKey }

// notifyKeysOnce makes the keys once per test binary: RSA generation is
// the slow part of these tests.
var notifyKeysOnce = sync.OnceValues(func() (notifyKeys, error) {
	var ks [3]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return notifyKeys{}, err
		}
		ks[i] = k
	}
	return notifyKeys{doku: ks[0], merchant: ks[1], other: ks[2]}, nil
})

func testNotifyKeys(tb testing.TB) notifyKeys {
	tb.Helper()
	k, err := notifyKeysOnce()
	if err != nil {
		tb.Fatalf("generate keys: %v", err)
	}
	return k
}

// testClock is a NowFunc that tests move.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *testClock) stamp(d time.Duration) string { // X-TIMESTAMP at now+d, in WIB
	return c.now().Add(d).In(doku.ExternalIDZone).Format(doku.TimestampLayout)
}

// receiverEnv is a Receiver served over real HTTP: the token endpoint and
// a notification endpoint that verifies, then acks or refuses.
type receiverEnv struct {
	r     *doku.Receiver
	cfg   doku.ReceiverConfig
	keys  notifyKeys
	clock *testClock
	srv   *httptest.Server
}

func newReceiverEnv(tb testing.TB, mode doku.NotificationMode, signatureOptional bool) *receiverEnv {
	tb.Helper()
	return newReceiverEnvToken(tb, mode, "", signatureOptional)
}

// newReceiverEnvToken is newReceiverEnv with the token setting too.
func newReceiverEnvToken(tb testing.TB, mode doku.NotificationMode, token doku.NotificationToken, signatureOptional bool) *receiverEnv {
	tb.Helper()
	keys := testNotifyKeys(tb)
	clock := new(testClock)
	clock.set(notifyStart)
	cfg := doku.ReceiverConfig{
		ClientID:          notifyClientID,
		ClientSecret:      secret.New(notifySecret),
		DOKUPublicKey:     &keys.doku.PublicKey,
		SigningKey:        keys.merchant,
		Mode:              mode,
		Token:             token,
		SignatureOptional: signatureOptional,
		NowFunc:           clock.now,
	}
	r, err := doku.NewReceiver(cfg)
	if err != nil {
		tb.Fatalf("NewReceiver: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+doku.PathTokenB2B, r.ServeToken)
	mux.HandleFunc("POST "+notifyPath, func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if _, err := r.Verify(req, body); err != nil {
			var ne *doku.NotificationError
			if !errors.As(err, &ne) {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			ne.Respond(w)
			return
		}
		doku.Ack(w)
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return &receiverEnv{r: r, cfg: cfg, keys: keys, clock: clock, srv: srv}
}

// tokenRequest is DOKU's request for a merchant token (docs/doku.md#merchant-token-endpoint), signed with
// key over clientID|timestamp.
func tokenRequest(tb testing.TB, url string, key *rsa.PrivateKey, clientID, timestamp, body string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url+doku.PathTokenB2B, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	sig, err := doku.SignAsymmetric(key, clientID, timestamp)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CLIENT-KEY", clientID)
	req.Header.Set("X-TIMESTAMP", timestamp)
	req.Header.Set("X-SIGNATURE", sig)
	return req
}

// tokenResult is the decoded answer of the token endpoint.
type tokenResult struct {
	status int
	header http.Header
	body   doku.TokenResponse
}

func doToken(tb testing.TB, req *http.Request) tokenResult {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var out doku.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("decode token answer: %v", err)
	}
	return tokenResult{status: resp.StatusCode, header: resp.Header, body: out}
}

// token asks e's token endpoint for a token the way DOKU does.
func (e *receiverEnv) token(tb testing.TB) string {
	tb.Helper()
	res := doToken(tb, tokenRequest(tb, e.srv.URL, e.keys.doku, notifyClientID, e.clock.stamp(0), `{"grantType":"client_credentials"}`))
	if res.body.ResponseCode != doku.CodeTokenIssued || res.body.AccessToken == "" {
		tb.Fatalf("token answer %s %q, want %s and a token", res.body.ResponseCode, res.body.ResponseMessage, doku.CodeTokenIssued)
	}
	return res.body.AccessToken
}

// notifySpec describes one notification; zero fields take valid values.
type notifySpec struct {
	sign      doku.NotificationMode // how X-SIGNATURE is made; ModeTokenOnly: none
	signKey   *rsa.PrivateKey       // asymmetric signer; default DOKU's key
	signPath  string                // path signed; default notifyPath
	signBody  string                // body signed; default body
	token     string                // bearer token; default a fresh one from the endpoint
	signToken string                // token in the symmetric signature; default token
	body      string                // body sent; default notifyBody
	timestamp string                // default now
}

// request builds a notification as DOKU would send it to e.
func (e *receiverEnv) request(tb testing.TB, s notifySpec) (*http.Request, []byte) {
	tb.Helper()
	if s.token == "" {
		s.token = e.token(tb)
	}
	if s.signToken == "" {
		s.signToken = s.token
	}
	if s.body == "" {
		s.body = notifyBody
	}
	if s.signBody == "" {
		s.signBody = s.body
	}
	if s.signPath == "" {
		s.signPath = notifyPath
	}
	if s.signKey == nil {
		s.signKey = e.keys.doku
	}
	if s.timestamp == "" {
		s.timestamp = e.clock.stamp(0)
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+notifyPath, strings.NewReader(s.body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("X-TIMESTAMP", s.timestamp)
	req.Header.Set("X-PARTNER-ID", notifyClientID)
	req.Header.Set("X-EXTERNAL-ID", notifyExtID)
	switch s.sign {
	case doku.ModeAsymmetric:
		sig, err := doku.SignAsymmetricTransaction(s.signKey, http.MethodPost, s.signPath, []byte(s.signBody), s.timestamp)
		if err != nil {
			tb.Fatal(err)
		}
		req.Header.Set("X-SIGNATURE", sig)
	case doku.ModeSymmetric:
		req.Header.Set("X-SIGNATURE", doku.SignSymmetric(notifySecret, http.MethodPost, s.signPath, s.signToken, []byte(s.signBody), s.timestamp))
	}
	return req, []byte(s.body)
}

func TestAsymmetricTransactionSignature(t *testing.T) {
	// A fixed body and its hash, signed below.
	const (
		body = `{"partnerReferenceNo":"ORD-7F3A91C2E55B40D8A1C6B2E9F0D4A7B3","amount":{"value":"25000.00","currency":"IDR"},"additionalInfo":{"channel":"DIRECT_DEBIT_ALLO_SNAP","remarks":"Order 7F3A91C2","successPaymentUrl":"https://shop.example.test/pay/ok","failedPaymentUrl":"https://shop.example.test/pay/fail","lineItems":[{"name":"Kopi Susu","price":"25000.00","quantity":"1"}]}}`
		ts   = "2025-03-14T10:15:30+07:00"
		path = "/payments/notifications"
		want = "POST:/payments/notifications:2ceea0d88db7e86da1caea01bd1673db4b6a27f07a666436402c529c0ba73f7c:2025-03-14T10:15:30+07:00"
	)
	if got := doku.AsymmetricTransactionStringToSign("post", path, []byte(body), ts); got != want {
		t.Fatalf("stringToSign=%s, want %s", got, want)
	}
	keys := testNotifyKeys(t)
	sig, err := doku.SignAsymmetricTransaction(keys.doku, "POST", path, []byte(body), ts)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 344 {
		t.Fatalf("len(signature)=%d, want 344 for a 2048-bit key", len(sig))
	}
	pub := &keys.doku.PublicKey
	if err := doku.VerifyAsymmetricTransaction(pub, "POST", path, []byte(body), ts, sig); err != nil {
		t.Fatalf("VerifyAsymmetricTransaction: %v", err)
	}
	for name, err := range map[string]error{
		"body":       doku.VerifyAsymmetricTransaction(pub, "POST", path, []byte(body+" "), ts, sig),
		"path":       doku.VerifyAsymmetricTransaction(pub, "POST", path+"/", []byte(body), ts, sig),
		"timestamp":  doku.VerifyAsymmetricTransaction(pub, "POST", path, []byte(body), "2025-03-14T10:15:31+07:00", sig),
		"method":     doku.VerifyAsymmetricTransaction(pub, "PUT", path, []byte(body), ts, sig),
		"key":        doku.VerifyAsymmetricTransaction(&keys.other.PublicKey, "POST", path, []byte(body), ts, sig),
		"garbage":    doku.VerifyAsymmetricTransaction(pub, "POST", path, []byte(body), ts, "not base64!"),
		"token form": doku.VerifyAsymmetric(pub, path, ts, sig),
	} {
		if !errors.Is(err, doku.ErrBadSignature) {
			t.Errorf("changed %s: err=%v, want ErrBadSignature", name, err)
		}
	}
}

func TestNewReceiver(t *testing.T) {
	keys := testNotifyKeys(t)
	valid := doku.ReceiverConfig{
		ClientID:      notifyClientID,
		ClientSecret:  secret.New(notifySecret),
		DOKUPublicKey: &keys.doku.PublicKey,
		SigningKey:    keys.merchant,
	}
	if _, err := doku.NewReceiver(valid); err != nil {
		t.Fatalf("NewReceiver: %v", err)
	}
	for name, edit := range map[string]func(*doku.ReceiverConfig){
		"AsymmetricNoSecret": func(c *doku.ReceiverConfig) { c.Mode, c.ClientSecret = doku.ModeAsymmetric, secret.Value{} },
		"SymmetricAnyToken":  func(c *doku.ReceiverConfig) { c.Mode, c.Token = doku.ModeSymmetric, doku.TokenAny },
		"AsymmetricAnyToken": func(c *doku.ReceiverConfig) { c.Mode, c.Token = doku.ModeAsymmetric, doku.TokenAny },
		"TokenOnlyRequired":  func(c *doku.ReceiverConfig) { c.Mode, c.Token = doku.ModeTokenOnly, doku.TokenIssued },
		"OptionalRequired":   func(c *doku.ReceiverConfig) { c.Token, c.SignatureOptional = doku.TokenIssued, true },
	} {
		cfg := valid
		edit(&cfg)
		if _, err := doku.NewReceiver(cfg); err != nil {
			t.Errorf("%s: NewReceiver: %v", name, err)
		}
	}
	for name, edit := range map[string]func(*doku.ReceiverConfig){
		"NoClientID":        func(c *doku.ReceiverConfig) { c.ClientID = "" },
		"NoDOKUKey":         func(c *doku.ReceiverConfig) { c.DOKUPublicKey = nil },
		"NoSigningKey":      func(c *doku.ReceiverConfig) { c.SigningKey = nil },
		"UnknownMode":       func(c *doku.ReceiverConfig) { c.Mode = "whichever" },
		"SymmetricNoSecret": func(c *doku.ReceiverConfig) { c.Mode, c.ClientSecret = doku.ModeSymmetric, secret.Value{} },
		"DefaultNoSecret":   func(c *doku.ReceiverConfig) { c.ClientSecret = secret.Value{} },
		"UnknownToken":      func(c *doku.ReceiverConfig) { c.Token = "optional" },
		// Nothing would authenticate a notification.
		"TokenOnlyAnyToken":         func(c *doku.ReceiverConfig) { c.Mode, c.Token = doku.ModeTokenOnly, doku.TokenAny },
		"SignatureOptionalAnyToken": func(c *doku.ReceiverConfig) { c.Token, c.SignatureOptional = doku.TokenAny, true },
		"NegativeSkew":              func(c *doku.ReceiverConfig) { c.MaxSkew = -time.Second },
		"SubsecondLifetime":         func(c *doku.ReceiverConfig) { c.TokenLifetime = time.Millisecond },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := valid
			edit(&cfg)
			_, err := doku.NewReceiver(cfg)
			if err == nil {
				t.Fatal("NewReceiver accepted it")
			}
			if strings.Contains(err.Error(), notifySecret) {
				t.Fatalf("error %q holds the secret", err)
			}
		})
	}
}

func TestServeToken(t *testing.T) {
	e := newReceiverEnv(t, doku.ModeAsymmetric, false)
	const grant = `{"grantType":"client_credentials"}`

	t.Run("OK", func(t *testing.T) {
		res := doToken(t, tokenRequest(t, e.srv.URL, e.keys.doku, notifyClientID, e.clock.stamp(0), grant))
		b := res.body
		if res.status != http.StatusOK || b.ResponseCode != doku.CodeTokenIssued || b.TokenType != "Bearer" || b.ExpiresIn != 900 {
			t.Fatalf("answer %d %s %q tokenType=%q expiresIn=%d, want 200 2007300 Bearer 900", res.status, b.ResponseCode, b.ResponseMessage, b.TokenType, b.ExpiresIn)
		}
		if got := res.header.Get("X-CLIENT-KEY"); got != notifyClientID {
			t.Errorf("X-CLIENT-KEY=%q, want %q", got, notifyClientID)
		}
		if _, err := time.Parse(time.RFC3339, res.header.Get("X-TIMESTAMP")); err != nil {
			t.Errorf("X-TIMESTAMP %q: %v", res.header.Get("X-TIMESTAMP"), err)
		}
		// An RS256 JWT with exp, iss and clientId (docs/doku.md#merchant-token-endpoint).
		parts := strings.Split(b.AccessToken, ".")
		if len(parts) != 3 {
			t.Fatalf("token has %d parts, want 3", len(parts))
		}
		var head struct{ Alg string }
		var claims struct {
			Exp      int64  `json:"exp"`
			Iss      string `json:"iss"`
			ClientID string `json:"clientId"`
		}
		for i, v := range []any{&head, &claims} {
			raw, err := base64.RawURLEncoding.DecodeString(parts[i])
			if err != nil {
				t.Fatalf("token part %d: %v", i, err)
			}
			if err := json.Unmarshal(raw, v); err != nil {
				t.Fatalf("token part %d: %v", i, err)
			}
		}
		if head.Alg != "RS256" || claims.Exp != notifyStart.Add(900*time.Second).Unix() || claims.Iss == "" || claims.ClientID != notifyClientID {
			t.Fatalf("token alg=%s claims=%+v, want RS256, exp now+900s, an issuer and clientId %s", head.Alg, claims, notifyClientID)
		}
	})

	for _, tc := range []struct {
		name     string
		key      *rsa.PrivateKey
		clientID string
		ts       string
		body     string
		drop     string // header to remove
		want     doku.Code
	}{
		{name: "MerchantKey", key: e.keys.merchant, want: doku.CodeTokenUnauthorized},
		{name: "OtherKey", key: e.keys.other, want: doku.CodeTokenUnauthorized},
		{name: "StaleTimestamp", ts: e.clock.stamp(-6 * time.Minute), want: doku.CodeTokenUnauthorized},
		{name: "FutureTimestamp", ts: e.clock.stamp(6 * time.Minute), want: doku.CodeTokenUnauthorized},
		{name: "WrongClientKey", clientID: "BRN-9999-1700000000000", want: doku.CodeTokenUnauthorized},
		{name: "MissingClientKey", drop: "X-CLIENT-KEY", want: doku.CodeTokenMissingField},
		{name: "MissingTimestamp", drop: "X-TIMESTAMP", want: doku.CodeTokenMissingField},
		{name: "MissingSignature", drop: "X-SIGNATURE", want: doku.CodeTokenMissingField},
		{name: "BadTimestamp", ts: "14/03/2026 10:15:30", want: doku.CodeTokenBadFormat},
		{name: "BadGrantType", body: `{"grantType":"authorization_code"}`, want: doku.CodeTokenBadFormat},
		{name: "NoGrantType", body: `{}`, want: doku.CodeTokenMissingField},
		{name: "BodyNotJSON", body: `grantType=client_credentials`, want: doku.CodeTokenBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = e.keys.doku
			}
			clientID := cmpOr(tc.clientID, notifyClientID)
			req := tokenRequest(t, e.srv.URL, key, clientID, cmpOr(tc.ts, e.clock.stamp(0)), cmpOr(tc.body, grant))
			if tc.drop != "" {
				req.Header.Del(tc.drop)
			}
			res := doToken(t, req)
			if res.status != tc.want.HTTPStatus() || res.body.ResponseCode != tc.want || res.body.AccessToken != "" {
				t.Fatalf("answer %d %s %q token=%t, want %d %s and no token", res.status, res.body.ResponseCode, res.body.ResponseMessage, res.body.AccessToken != "", tc.want.HTTPStatus(), tc.want)
			}
		})
	}

	t.Run("InvalidSignatureMessage", func(t *testing.T) {
		res := doToken(t, tokenRequest(t, e.srv.URL, e.keys.other, notifyClientID, e.clock.stamp(0), grant))
		if res.body.ResponseMessage != "Unauthorized.Invalid Signature" {
			t.Fatalf("message %q, want the SDKs' %q", res.body.ResponseMessage, "Unauthorized.Invalid Signature")
		}
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     doku.NotificationMode // the Receiver's; "" is the default
		token    doku.NotificationToken
		optional bool
		// spec makes the notification; it may move e's clock.
		spec func(t *testing.T, e *receiverEnv) notifySpec
		edit func(h http.Header)
		want doku.Code // "" means accepted
		// unsigned: accepted on its bearer token alone (Signed false)
		unsigned bool
	}{
		{
			name: "Asymmetric", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeAsymmetric} },
		},
		{
			// DOKU's documents: HMAC-SHA512 with the client secret, and
			// the token the merchant's endpoint issued.
			name: "DefaultModeIsSymmetric",
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeSymmetric} },
		},
		{
			name: "DefaultModeRefusesAsymmetric", want: doku.CodeNotifyUnauthorized,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeAsymmetric} },
		},
		{
			name: "DefaultTokenIsRequired", want: doku.CodeNotifyInvalidToken,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, token: "a-token-from-elsewhere"}
			},
		},
		{
			// DOKU adds fields at will: a signed body with fields ddctl
			// does not know is taken, the signature over its exact bytes.
			name: "UnknownFieldsSigned",
			spec: func(t *testing.T, _ *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, body: string(editNotification(t, func(m map[string]any) {
					m["paidTime"] = "2026-03-14T10:15:30+07:00"
					m["amount"].(map[string]any)["exchangeRate"] = nil
					m["additionalInfo"].(map[string]any)["origin"] = map[string]any{"product": "SDK", "apiFormat": "SNAP"}
				}))}
			},
		},
		{
			// With the token not required, a token ddctl did not issue
			// is DOKU's when the HMAC over it verifies.
			name: "SymmetricAnyTokenNotIssued", mode: doku.ModeSymmetric, token: doku.TokenAny,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, token: "eyJhbGciOiJIUzI1NiJ9.from-doku.sig_-~+/=="}
			},
		},
		{
			name: "SymmetricAnyTokenIssued", mode: doku.ModeSymmetric, token: doku.TokenAny,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeSymmetric} },
		},
		{
			name: "SymmetricAnyTokenSwapped", mode: doku.ModeSymmetric, token: doku.TokenAny, want: doku.CodeNotifyUnauthorized,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, signToken: "token-doku-signed", token: "token-swapped-in"}
			},
		},
		{
			name: "SymmetricAnyTokenStillNeedsBearer", mode: doku.ModeSymmetric, token: doku.TokenAny, want: doku.CodeNotifyInvalidToken,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeSymmetric, token: "t"} },
			edit: func(h http.Header) { h.Del("Authorization") },
		},
		{
			// ':' separates the fields of what is signed.
			name: "SymmetricAnyTokenNotB64Token", mode: doku.ModeSymmetric, token: doku.TokenAny, want: doku.CodeNotifyInvalidToken,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeSymmetric, token: "a:b"} },
		},
		{
			name: "SymmetricAnyTokenRefusesAsymmetric", mode: doku.ModeSymmetric, token: doku.TokenAny, want: doku.CodeNotifyUnauthorized,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, token: "not-issued"}
			},
		},
		{
			name: "AsymmetricAnyTokenNotIssued", mode: doku.ModeAsymmetric, token: doku.TokenAny,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, token: "not-issued"}
			},
		},
		{
			name: "Symmetric", mode: doku.ModeSymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeSymmetric} },
		},
		{
			name: "TokenOnly", mode: doku.ModeTokenOnly, unsigned: true,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeTokenOnly} },
		},
		{
			name: "TokenOnlyIgnoresSignature", mode: doku.ModeTokenOnly, unsigned: true,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeTokenOnly} },
			edit: func(h http.Header) { h.Set("X-SIGNATURE", "bm90IGEgc2lnbmF0dXJl") },
		},
		{
			name: "TimestampWithinSkew", mode: doku.ModeAsymmetric,
			spec: func(_ *testing.T, e *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, timestamp: e.clock.stamp(-4 * time.Minute)}
			},
		},
		{
			name: "UTCTimestampWithMillis", mode: doku.ModeAsymmetric,
			spec: func(_ *testing.T, e *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, timestamp: e.clock.now().Format("2006-01-02T15:04:05.000Z07:00")}
			},
		},
		{
			name: "NoPartnerHeader", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeAsymmetric} },
			edit: func(h http.Header) { h.Del("X-PARTNER-ID") },
		},
		{
			name: "OptionalSignatureAbsent", mode: doku.ModeAsymmetric, optional: true, unsigned: true,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeTokenOnly} },
		},
		{
			name: "OptionalSignatureMustVerify", mode: doku.ModeAsymmetric, optional: true,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeSymmetric} },
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "NoBearer", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeAsymmetric} },
			edit: func(h http.Header) { h.Del("Authorization") },
			want: doku.CodeNotifyInvalidToken,
		},
		{
			name: "BasicAuth", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeAsymmetric} },
			edit: func(h http.Header) {
				h.Set("Authorization", "Basic "+strings.TrimPrefix(h.Get("Authorization"), "Bearer "))
			},
			want: doku.CodeNotifyInvalidToken,
		},
		{
			name: "TokenSignedByAnotherKey", mode: doku.ModeAsymmetric,
			spec: func(t *testing.T, e *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, token: foreignToken(t, e, e.keys.other, notifyClientID)}
			},
			want: doku.CodeNotifyInvalidToken,
		},
		{
			name: "TokenForAnotherClient", mode: doku.ModeSymmetric,
			spec: func(t *testing.T, e *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, token: foreignToken(t, e, e.keys.merchant, "BRN-9999-1700000000000")}
			},
			want: doku.CodeNotifyInvalidToken,
		},
		{
			name: "ExpiredToken", mode: doku.ModeSymmetric,
			spec: func(t *testing.T, e *receiverEnv) notifySpec {
				tok := e.token(t)
				e.clock.advance(doku.DefaultReceiverTokenLifetime)
				return notifySpec{sign: doku.ModeSymmetric, token: tok}
			},
			want: doku.CodeNotifyInvalidToken,
		},
		{
			name: "TamperedBodyAsymmetric", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, signBody: notifyBody, body: strings.Replace(notifyBody, "25000.00", "2500000.00", 1)}
			},
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "TamperedBodySymmetric", mode: doku.ModeSymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, signBody: notifyBody, body: strings.Replace(notifyBody, `"00"`, `"06"`, 1)}
			},
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "ReformattedBody", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, signBody: notifyBody, body: strings.ReplaceAll(notifyBody, ",", ", ")}
			},
			want: doku.CodeNotifyUnauthorized,
		},
		{
			// DOKU signs the minified body: the same JSON with whitespace
			// between its tokens verifies; a value changed does not.
			name: "ReformattedBodySymmetric", mode: doku.ModeSymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, signBody: notifyBody, body: strings.ReplaceAll(notifyBody, ",", ",\n  ")}
			},
		},
		{
			name: "ReformattedBodySymmetricValueChanged", mode: doku.ModeSymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, signBody: notifyBody, body: strings.Replace(strings.ReplaceAll(notifyBody, ",", ", "), "25000.00", "25000.01", 1)}
			},
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "SymmetricSignatureToAsymmetricReceiver", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeSymmetric} },
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "AsymmetricSignatureToSymmetricReceiver", mode: doku.ModeSymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeAsymmetric} },
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "SignedByMerchantKey", mode: doku.ModeAsymmetric,
			spec: func(_ *testing.T, e *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, signKey: e.keys.merchant}
			},
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "SignedForAnotherPath", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, signPath: "/payments/notifications"}
			},
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "SymmetricSignedWithAnotherToken", mode: doku.ModeSymmetric,
			spec: func(t *testing.T, e *receiverEnv) notifySpec {
				first := e.token(t)
				e.clock.advance(time.Second)
				second := e.token(t) // valid too, but not the one signed
				if second == first {
					t.Fatal("two tokens a second apart are equal")
				}
				return notifySpec{sign: doku.ModeSymmetric, signToken: first, token: second}
			},
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "StaleTimestamp", mode: doku.ModeAsymmetric,
			spec: func(_ *testing.T, e *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, timestamp: e.clock.stamp(-6 * time.Minute)}
			},
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "FutureTimestamp", mode: doku.ModeSymmetric,
			spec: func(_ *testing.T, e *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, timestamp: e.clock.stamp(6 * time.Minute)}
			},
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "BadTimestamp", mode: doku.ModeTokenOnly,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeTokenOnly, timestamp: "14 Mar 2026 10:15:30 WIB"}
			},
			want: doku.CodeNotifyBadFormat,
		},
		{
			name: "MissingSignatureAsymmetric", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeTokenOnly} },
			want: doku.CodeNotifyMissingField,
		},
		{
			name: "MissingSignatureSymmetric", mode: doku.ModeSymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeTokenOnly} },
			want: doku.CodeNotifyMissingField,
		},
		{
			name: "WrongPartner", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeAsymmetric} },
			edit: func(h http.Header) { h.Set("X-PARTNER-ID", "BRN-9999-1700000000000") },
			want: doku.CodeNotifyUnauthorized,
		},
		{
			name: "MissingExternalID", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeAsymmetric} },
			edit: func(h http.Header) { h.Del("X-EXTERNAL-ID") },
			want: doku.CodeNotifyMissingField,
		},
		{
			name: "MissingTimestamp", mode: doku.ModeTokenOnly,
			spec: func(*testing.T, *receiverEnv) notifySpec { return notifySpec{sign: doku.ModeTokenOnly} },
			edit: func(h http.Header) { h.Del("X-TIMESTAMP") },
			want: doku.CodeNotifyMissingField,
		},
		{
			name: "SignedBodyNotJSON", mode: doku.ModeAsymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeAsymmetric, body: "originalPartnerReferenceNo=ORD-1"}
			},
			want: doku.CodeNotifyBadRequest,
		},
		{
			name: "SignedBodyMissingStatus", mode: doku.ModeSymmetric,
			spec: func(*testing.T, *receiverEnv) notifySpec {
				return notifySpec{sign: doku.ModeSymmetric, body: strings.Replace(notifyBody, `"latestTransactionStatus":"00",`, "", 1)}
			},
			want: doku.CodeNotifyMissingField,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newReceiverEnvToken(t, tc.mode, tc.token, tc.optional)
			s := tc.spec(t, e)
			req, body := e.request(t, s)
			if tc.edit != nil {
				tc.edit(req.Header)
			}
			n, err := e.r.Verify(req, body)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				got := *n
				w := wantNotification
				w.ExternalID, w.Signed = notifyExtID, !tc.unsigned
				if diff := cmp.Diff(w, got); diff != "" {
					t.Fatalf("notification (-want +got):\n%s", diff)
				}
				return
			}
			var ne *doku.NotificationError
			if !errors.As(err, &ne) {
				t.Fatalf("Verify err=%v (%T), want a *NotificationError %s", err, err, tc.want)
			}
			if n != nil {
				t.Fatalf("Verify returned a notification with error %v", err)
			}
			if ne.Code != tc.want || ne.HTTPStatus != tc.want.HTTPStatus() {
				t.Fatalf("refusal %s HTTP %d (%s), want %s HTTP %d", ne.Code, ne.HTTPStatus, ne.Reason, tc.want, tc.want.HTTPStatus())
			}
			assertNoLeak(t, err, req.Header.Get("Authorization"), string(body))
			t.Logf("refused: %v", err)
		})
	}
}

// foreignToken is a token issued by another Receiver: signed with key, for
// clientID.
func foreignToken(t *testing.T, e *receiverEnv, key *rsa.PrivateKey, clientID string) string {
	t.Helper()
	other, err := doku.NewReceiver(doku.ReceiverConfig{
		ClientID: clientID, ClientSecret: secret.New(notifySecret), DOKUPublicKey: &e.keys.doku.PublicKey, SigningKey: key, NowFunc: e.clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	other.ServeToken(rec, tokenRequest(t, "http://merchant.test", e.keys.doku, clientID, e.clock.stamp(0), `{"grantType":"client_credentials"}`))
	var out doku.TokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.AccessToken == "" {
		t.Fatalf("foreign token: %s %v", rec.Body.Bytes(), err)
	}
	return out.AccessToken
}

// assertNoLeak fails if err's text holds the secret, the Authorization
// header's token or the body.
func assertNoLeak(tb testing.TB, err error, authorization, body string) {
	tb.Helper()
	msg := err.Error()
	var ne *doku.NotificationError
	if errors.As(err, &ne) {
		msg += "\n" + ne.Reason
	}
	_, token, _ := strings.Cut(authorization, " ")
	for what, s := range map[string]string{"secret": notifySecret, "token": token, "body": body} {
		if len(s) >= 8 && strings.Contains(msg, s) {
			tb.Fatalf("error %q holds the %s", msg, what)
		}
	}
}

func TestNotificationOverHTTP(t *testing.T) {
	e := newReceiverEnv(t, doku.ModeAsymmetric, false)

	t.Run("Ack", func(t *testing.T) {
		req, _ := e.request(t, notifySpec{sign: doku.ModeAsymmetric})
		status, body := post(t, req)
		if want := `{"responseCode":"2005600","responseMessage":"Successful"}`; status != http.StatusOK || body != want {
			t.Fatalf("answer %d %s, want 200 %s", status, body, want)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		req, _ := e.request(t, notifySpec{sign: doku.ModeAsymmetric, signKey: e.keys.other})
		status, body := post(t, req)
		if want := `{"responseCode":"4015600","responseMessage":"Unauthorized"}`; status != http.StatusUnauthorized || body != want {
			t.Fatalf("answer %d %s, want 401 %s", status, body, want)
		}
	})
	t.Run("ExpiredToken", func(t *testing.T) {
		tok := e.token(t)
		e.clock.advance(16 * time.Minute)
		defer e.clock.set(notifyStart)
		req, _ := e.request(t, notifySpec{sign: doku.ModeAsymmetric, token: tok})
		status, body := post(t, req)
		if want := `{"responseCode":"4015601","responseMessage":"Invalid Token (B2B)"}`; status != http.StatusUnauthorized || body != want {
			t.Fatalf("answer %d %s, want 401 %s", status, body, want)
		}
	})
	t.Run("TokenSurvivesRestart", func(t *testing.T) {
		// Tokens are self-contained: a new Receiver with the same key
		// accepts what the old one issued.
		req, body := e.request(t, notifySpec{sign: doku.ModeAsymmetric})
		again, err := doku.NewReceiver(e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := again.Verify(req, body); err != nil {
			t.Fatalf("Verify after restart: %v", err)
		}
	})
}

func post(tb testing.TB, req *http.Request) (int, string) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type=%q, want application/json", ct)
	}
	return resp.StatusCode, string(b)
}

func TestVerifyConcurrent(t *testing.T) {
	e := newReceiverEnv(t, doku.ModeSymmetric, false)
	req, body := e.request(t, notifySpec{sign: doku.ModeSymmetric})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				r := req.Clone(req.Context())
				if _, err := e.r.Verify(r, body); err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestAck(t *testing.T) {
	rec := httptest.NewRecorder()
	doku.Ack(rec)
	if want := `{"responseCode":"2005600","responseMessage":"Successful"}`; rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Fatalf("Ack wrote %d %s, want 200 %s", rec.Code, rec.Body, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type=%q, want application/json", ct)
	}
}

// editNotification is notifyBody with edit applied to its decoded form.
func editNotification(tb testing.TB, edit func(m map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(notifyBody), &m); err != nil {
		tb.Fatal(err)
	}
	edit(m)
	b, err := doku.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func amountOf(m map[string]any) map[string]any { return m["amount"].(map[string]any) }

func TestParseNotification(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		n, err := doku.ParseNotification([]byte(notifyBody))
		if err != nil {
			t.Fatalf("ParseNotification: %v", err)
		}
		if diff := cmp.Diff(wantNotification, *n); diff != "" {
			t.Fatalf("notification (-want +got):\n%s", diff)
		}
		if got, want := n.DedupKey(), "ORD-7F3A91C2E55B40D8A1C6B2E9F0D4A7B3:00"; got != want {
			t.Fatalf("DedupKey=%q, want %q", got, want)
		}
	})

	// DOKU adds fields at will (docs/doku.md#wire-format); optional fields of another type than
	// expected cost nothing.
	for name, edit := range map[string]func(m map[string]any){
		"UnknownFields": func(m map[string]any) {
			m["paidTime"] = "2026-03-14T10:15:30+07:00"
			m["approvalCode"] = 123456
			m["amount"].(map[string]any)["exchangeRate"] = nil
			info := m["additionalInfo"].(map[string]any)
			info["lineItems"] = []any{map[string]any{"name": "Kopi", "price": "25000.00", "quantity": 1}}
			info["origin"] = map[string]any{"product": "SDK", "apiFormat": "SNAP"}
		},
		"WhitespaceAround": nil,
	} {
		t.Run(name, func(t *testing.T) {
			body := []byte(" \n" + notifyBody + "\n")
			if edit != nil {
				body = editNotification(t, edit)
			}
			n, err := doku.ParseNotification(body)
			if err != nil {
				t.Fatalf("ParseNotification: %v", err)
			}
			if diff := cmp.Diff(wantNotification, *n); diff != "" {
				t.Fatalf("notification (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("LooseOptionalFields", func(t *testing.T) {
		body := editNotification(t, func(m map[string]any) {
			m["originalExternalId"] = json.Number("48213377906511223344")
			m["transactionStatusDesc"] = nil
			m["additionalInfo"] = ""
		})
		n, err := doku.ParseNotification(body)
		if err != nil {
			t.Fatalf("ParseNotification: %v", err)
		}
		if n.OriginalExternalID != "48213377906511223344" || n.TransactionStatusDesc != "" || n.AdditionalInfo != (doku.NotificationInfo{}) {
			t.Fatalf("got %+v, want originalExternalId from a number and the rest empty", n)
		}
	})

	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		body string
		want doku.Code
	}{
		{name: "NoPartnerReferenceNo", edit: func(m map[string]any) { delete(m, "originalPartnerReferenceNo") }, want: doku.CodeNotifyMissingField},
		{name: "EmptyPartnerReferenceNo", edit: func(m map[string]any) { m["originalPartnerReferenceNo"] = "" }, want: doku.CodeNotifyMissingField},
		{name: "NullPartnerReferenceNo", edit: func(m map[string]any) { m["originalPartnerReferenceNo"] = nil }, want: doku.CodeNotifyMissingField},
		{name: "NumericPartnerReferenceNo", edit: func(m map[string]any) { m["originalPartnerReferenceNo"] = 42 }, want: doku.CodeNotifyBadFormat},
		{name: "NoStatus", edit: func(m map[string]any) { delete(m, "latestTransactionStatus") }, want: doku.CodeNotifyMissingField},
		{name: "OneDigitStatus", edit: func(m map[string]any) { m["latestTransactionStatus"] = "0" }, want: doku.CodeNotifyBadFormat},
		{name: "LetterStatus", edit: func(m map[string]any) { m["latestTransactionStatus"] = "OK" }, want: doku.CodeNotifyBadFormat},
		{name: "NumericStatus", edit: func(m map[string]any) { m["latestTransactionStatus"] = 0 }, want: doku.CodeNotifyBadFormat},
		{name: "NoAmount", edit: func(m map[string]any) { delete(m, "amount") }, want: doku.CodeNotifyMissingField},
		{name: "NoAmountValue", edit: func(m map[string]any) { delete(amountOf(m), "value") }, want: doku.CodeNotifyMissingField},
		{name: "NoCurrency", edit: func(m map[string]any) { delete(amountOf(m), "currency") }, want: doku.CodeNotifyMissingField},
		{name: "AmountWithoutDecimals", edit: func(m map[string]any) { amountOf(m)["value"] = "25000" }, want: doku.CodeNotifyBadFormat},
		{name: "NegativeAmount", edit: func(m map[string]any) { amountOf(m)["value"] = "-25000.00" }, want: doku.CodeNotifyBadFormat},
		{name: "NumericAmount", edit: func(m map[string]any) { amountOf(m)["value"] = 25000 }, want: doku.CodeNotifyBadFormat},
		{name: "OtherCurrency", edit: func(m map[string]any) { amountOf(m)["currency"] = "USD" }, want: doku.CodeNotifyBadFormat},
		{name: "AmountNotObject", edit: func(m map[string]any) { m["amount"] = "25000.00" }, want: doku.CodeNotifyBadFormat},
		{name: "NotJSON", body: "latestTransactionStatus=00", want: doku.CodeNotifyBadRequest},
		{name: "Truncated", body: notifyBody[:len(notifyBody)-1], want: doku.CodeNotifyBadRequest},
		{name: "Array", body: "[" + notifyBody + "]", want: doku.CodeNotifyBadRequest},
		{name: "Null", body: "null", want: doku.CodeNotifyMissingField},
		{name: "Empty", body: "", want: doku.CodeNotifyBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			if tc.edit != nil {
				body = editNotification(t, tc.edit)
			}
			n, err := doku.ParseNotification(body)
			var ne *doku.NotificationError
			if !errors.As(err, &ne) || n != nil {
				t.Fatalf("ParseNotification=%v, %v; want a *NotificationError %s", n, err, tc.want)
			}
			if ne.Code != tc.want || ne.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("refusal %s HTTP %d (%s), want %s HTTP 400", ne.Code, ne.HTTPStatus, ne.Reason, tc.want)
			}
			if bytes.Contains([]byte(err.Error()), []byte("25000")) {
				t.Fatalf("error %q quotes the body", err)
			}
		})
	}
}

func TestDedupKeySameOnRetry(t *testing.T) {
	// A retry (docs/doku.md#notification-retries) may come under another X-EXTERNAL-ID and timestamp:
	// DedupKey still matches. A later status change is a new event.
	e := newReceiverEnv(t, doku.ModeAsymmetric, false)
	req, body := e.request(t, notifySpec{sign: doku.ModeAsymmetric})
	first, err := e.r.Verify(req, body)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.advance(30 * time.Minute)
	req, body = e.request(t, notifySpec{sign: doku.ModeAsymmetric})
	req.Header.Set("X-EXTERNAL-ID", "482133779065112299999")
	retry, err := e.r.Verify(req, body)
	if err != nil {
		t.Fatal(err)
	}
	if first.DedupKey() != retry.DedupKey() || first.ExternalID == retry.ExternalID {
		t.Fatalf("keys %q/%q external ids %q/%q: want equal keys, different ids", first.DedupKey(), retry.DedupKey(), first.ExternalID, retry.ExternalID)
	}
	failed := *first
	failed.LatestTransactionStatus = doku.TxFailed
	if failed.DedupKey() == first.DedupKey() {
		t.Fatal("a new status has the same DedupKey")
	}
}

// A key given twice in one object, in any case, is refused: which of the
// two counts would depend on the reader.
func TestParseNotificationDuplicateKeys(t *testing.T) {
	for _, body := range []string{
		`{"originalPartnerReferenceNo":"ORD-1","latestTransactionStatus":"06","latestTransactionStatus":"00","amount":{"value":"150000.00","currency":"IDR"}}`,
		`{"originalPartnerReferenceNo":"ORD-1","latestTransactionStatus":"06","LatestTransactionStatus":"00","amount":{"value":"150000.00","currency":"IDR"}}`,
		`{"originalPartnerReferenceNo":"ORD-1","latestTransactionStatus":"00","amount":{"value":"1.00","VALUE":"150000.00","currency":"IDR"}}`,
		`{"originalPartnerReferenceNo":"ORD-1","latestTransactionStatus":"00","amount":{"value":"150000.00","currency":"IDR"},"additionalInfo":{"x":[{"a":1,"A":2}]}}`,
	} {
		_, err := doku.ParseNotification([]byte(body))
		var ne *doku.NotificationError
		if !errors.As(err, &ne) || ne.Code != doku.CodeNotifyBadRequest {
			t.Errorf("ParseNotification(%s) = %v, want a 400 refusal", body, err)
		}
	}
	// The same key in different objects, and values that look like keys,
	// are fine.
	ok := `{"originalPartnerReferenceNo":"value","latestTransactionStatus":"00","amount":{"value":"150000.00","currency":"IDR"},"additionalInfo":{"value":"x","list":["value","value"],"o":[{"a":1},{"a":2}]}}`
	if _, err := doku.ParseNotification([]byte(ok)); err != nil {
		t.Errorf("ParseNotification(%s) = %v, want it read", ok, err)
	}
}
