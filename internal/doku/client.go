package doku

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ddctl/ddctl/internal/secret"
)

// DefaultTimeout bounds one HTTP exchange with DOKU (the Go SDK's 30 s, docs/doku.md#timeouts).
const DefaultTimeout = 30 * time.Second

// maxBody bounds how much of an answer is read.
const maxBody = 1 << 20

// Config is what a Client needs to talk to DOKU.
type Config struct {
	BaseURL      string          // e.g. BaseURLSandbox, or a local sandbox's URL
	ClientID     string          // X-CLIENT-KEY / X-PARTNER-ID
	ClientSecret secret.Value    // HMAC key of transactional signatures
	PrivateKey   *rsa.PrivateKey // signs token requests
	IPAddress    string          // X-IP-ADDRESS where Allo requires it (10–15 characters)
	DeviceID     string          // X-DEVICE-ID where Allo requires it (account binding)
	// RequestsPerSecond paces every request, tokens included, with a token
	// bucket; 0 means no limit.
	RequestsPerSecond float64
	// TokenCache, if set, keeps the B2B token and the customer tokens
	// between processes, so that each run does not fetch its own
	// (principle 3, docs/principles.md). Its errors only cost a fetch.
	TokenCache TokenCache
	HTTPClient *http.Client // default: one with DefaultTimeout
	NowFunc    func() time.Time
	Logger     *slog.Logger
	// RetryBudget is how long one run may be held up in all by waits for
	// answers that say "retry later" (a 429, or any refusal with
	// Retry-After): DOKU did not process the request, so it is sent
	// again within the run, same X-EXTERNAL-ID, after Retry-After (or a
	// backoff with jitter). The calls of one run share it (RetryBudget,
	// NewRun). 0 means DefaultRetryBudget; negative, no retry within the
	// run: the answer is the call's, and the next run sends it again.
	RetryBudget time.Duration
	// RetryWaitMax is the longest single wait; 0 means
	// DefaultRetryWaitMax. An answer whose Retry-After is longer is left
	// to the next run.
	RetryWaitMax time.Duration
}

// TokenCache keeps access tokens by name. *state.Store has it (encrypted).
type TokenCache interface {
	Token(ctx context.Context, name string) (tok secret.Value, exp time.Time, ok bool, err error)
	PutToken(ctx context.Context, name string, tok secret.Value, exp time.Time) error
	DeleteToken(ctx context.Context, name string) error
}

// RequestOptions are the per-call headers the caller chooses.
type RequestOptions struct {
	// ExternalID is the X-EXTERNAL-ID. Callers that journal a call before
	// sending it choose it themselves; empty means a fresh NewExternalID.
	ExternalID string
	// AuthCode is the binding's authCode. On customer-scoped calls the
	// client exchanges it for the customer (B2B2C) token, cached per
	// binding until shortly before it expires, and sends that token as
	// Authorization-Customer.
	AuthCode secret.Value
	// DeviceID is X-DEVICE-ID, where the operation takes one; default
	// Config.DeviceID.
	DeviceID string
}

// Client calls DOKU's SNAP API. It is safe for concurrent use; build one
// and reuse it, so that the B2B token is reused while it is valid
// (principle 3, docs/principles.md).
type Client struct {
	cfg  Config
	http *http.Client
	now  func() time.Time
	log  *slog.Logger

	limiter *rate.Limiter // nil: no limit

	mu       sync.Mutex // held while a token is fetched, so only one is
	token    string
	tokenExp time.Time

	custMu     sync.Mutex // held while a customer token is fetched
	custTokens map[string]customerToken

	tokensFetched atomic.Int64

	runBudget *RetryBudget // the calls' budget when their context has none
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("doku: base URL %q is not an absolute http(s) URL", cfg.BaseURL)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("doku: client ID is empty")
	}
	if cfg.ClientSecret.IsZero() {
		return nil, errors.New("doku: client secret is empty")
	}
	if cfg.PrivateKey == nil {
		return nil, errors.New("doku: no private key to sign token requests with")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	c := &Client{
		cfg: cfg,
		http: cmp.Or(cfg.HTTPClient, &http.Client{
			Timeout: DefaultTimeout,
			// A redirect would re-send a signed POST somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}),
		now: cfg.NowFunc,
		log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if cfg.RequestsPerSecond > 0 {
		burst := max(1, int(cfg.RequestsPerSecond))
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), burst)
	}
	c.custTokens = map[string]customerToken{}
	c.runBudget = NewRetryBudget(c.budgetSize())
	return c, nil
}

// Refund asks DOKU to refund a payment (docs/doku.md#refund). A nil error means DOKU
// accepted it; otherwise the error is an *Error whose Outcome says whether
// the refund may have happened. With opts.AuthCode, the customer's token
// goes along as Authorization-Customer, which DOKU requires on a refund
// (docs/doku.md#refund): reconcile never sends a refund without it.
func (c *Client) Refund(ctx context.Context, req RefundRequest, opts RequestOptions) (*RefundResponse, error) {
	if req.AdditionalInfo.Channel == "" {
		req.AdditionalInfo.Channel = Channel
	}
	h := http.Header{}
	h.Set("X-IP-ADDRESS", c.cfg.IPAddress)
	if d := cmp.Or(opts.DeviceID, c.cfg.DeviceID); d != "" {
		h.Set("X-DEVICE-ID", d)
	}
	if !opts.AuthCode.IsZero() {
		tok, err := c.customerToken(ctx, opts.AuthCode, false)
		if err != nil {
			return nil, err
		}
		h.Set("Authorization-Customer", "Bearer "+tok.Reveal())
	}
	var out RefundResponse
	if err := c.call(ctx, OpRefund, req, opts, h, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BindAccount asks DOKU to bind a customer's Allo account (docs/doku.md#account-binding). The
// answer carries the page where the customer confirms with OTP and PIN,
// and the authCode that becomes usable once they have.
func (c *Client) BindAccount(ctx context.Context, req BindingRequest, opts RequestOptions) (*BindingResponse, error) {
	if req.AdditionalInfo.Channel == "" {
		req.AdditionalInfo.Channel = Channel
	}
	h := http.Header{}
	h.Set("X-IP-ADDRESS", c.cfg.IPAddress)
	h.Set("X-DEVICE-ID", cmp.Or(opts.DeviceID, c.cfg.DeviceID))
	var out BindingResponse
	if err := c.call(ctx, OpBinding, req, opts, h, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Balance asks for the balance of the bound account whose authCode is
// opts.AuthCode (docs/doku.md#balance-inquiry).
func (c *Client) Balance(ctx context.Context, opts RequestOptions) (*BalanceResponse, error) {
	h, err := c.customerHeaders(ctx, opts)
	if err != nil {
		return nil, err
	}
	var out BalanceResponse
	if err := c.call(ctx, OpBalance, BalanceRequest{AdditionalInfo: ChannelInfo{Channel: Channel}}, opts, h, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Pay asks DOKU to debit the bound account whose authCode is opts.AuthCode
// (docs/doku.md#payment). Success means accepted: the customer confirms on the page of
// WebRedirectURL, and the result comes by notification or status inquiry.
func (c *Client) Pay(ctx context.Context, req PaymentRequest, opts RequestOptions) (*PaymentResponse, error) {
	if req.AdditionalInfo.Channel == "" {
		req.AdditionalInfo.Channel = Channel
	}
	h, err := c.customerHeaders(ctx, opts)
	if err != nil {
		return nil, err
	}
	h.Set("CHANNEL-ID", PaymentChannelID)
	var out PaymentResponse
	if err := c.call(ctx, OpPayment, req, opts, h, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Unbind asks DOKU to remove the binding whose authCode is opts.AuthCode
// (docs/doku.md#account-unbinding): its customer token is the request's tokenId.
func (c *Client) Unbind(ctx context.Context, opts RequestOptions) (*UnbindingResponse, error) {
	tok, err := c.customerToken(ctx, opts.AuthCode, false)
	var e *Error
	if errors.As(err, &e) && BindingGone(err) {
		// The authCode no longer buys a token: the binding is not active,
		// perhaps because an earlier unbinding whose answer was lost went
		// through. Ask before concluding anything.
		e.Outcome = Unknown
	}
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("X-IP-ADDRESS", c.cfg.IPAddress)
	req := UnbindingRequest{TokenID: tok.Reveal(), AdditionalInfo: ChannelInfo{Channel: Channel}}
	var out UnbindingResponse
	err = c.call(ctx, OpUnbinding, req, opts, h, &out)
	// Whatever the answer, the cached token may be dead now: whoever asks
	// next (the resolver, to learn whether the unbinding happened) must ask
	// DOKU, not the cache.
	c.forgetCustomerToken(ctx, opts.AuthCode)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CustomerToken exchanges a binding's authCode for its customer token
// (docs/doku.md#b2b2c-token) now, whatever is cached, and caches the answer. ddctl reads a
// refused exchange (403) as a binding not confirmed yet or unbound (the UNCONFIRMED readings
// BindingActivation and BindingGone, docs/doku.md#binding): the refresh and the resolver use it to tell an
// active binding, so a cached token must not answer for DOKU.
func (c *Client) CustomerToken(ctx context.Context, authCode secret.Value) (secret.Value, error) {
	return c.customerToken(ctx, authCode, true)
}

func (c *Client) customerHeaders(ctx context.Context, opts RequestOptions) (http.Header, error) {
	tok, err := c.customerToken(ctx, opts.AuthCode, false)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("X-IP-ADDRESS", c.cfg.IPAddress)
	h.Set("Authorization-Customer", "Bearer "+tok.Reveal())
	return h, nil
}

// PaymentStatus asks for a payment's status and its refunds (docs/doku.md#status-inquiry). It
// changes nothing at DOKU, so its failures are never Unknown.
func (c *Client) PaymentStatus(ctx context.Context, req StatusRequest, opts RequestOptions) (*StatusResponse, error) {
	if req.AdditionalInfo.Channel == "" {
		req.AdditionalInfo.Channel = Channel
	}
	if req.ServiceCode == "" {
		req.ServiceCode = StatusServiceCode
	}
	var out StatusResponse
	if err := c.call(ctx, OpStatus, req, opts, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TokensFetched counts B2B tokens obtained so far (for tests and metrics).
func (c *Client) TokensFetched() int64 { return c.tokensFetched.Load() }

func (c *Client) timestamp() string {
	return c.now().In(ExternalIDZone).Format(TimestampLayout)
}

// accessToken returns the cached B2B token, fetching a new one when it is
// missing or within TokenRefreshMargin of its expiry.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.tokenExp.Add(-TokenRefreshMargin)) {
		return c.token, nil
	}
	cacheName := c.b2bCacheName()
	if c.cfg.TokenCache != nil && c.token == "" {
		tok, exp, ok, err := c.cfg.TokenCache.Token(ctx, cacheName)
		if err != nil {
			c.log.LogAttrs(ctx, slog.LevelDebug, "token cache", slog.String("error", err.Error()))
		}
		if ok && c.now().Before(exp.Add(-TokenRefreshMargin)) {
			c.token, c.tokenExp = tok.Reveal(), exp
			return c.token, nil
		}
	}
	ts := c.timestamp()
	sig, err := SignAsymmetric(c.cfg.PrivateKey, c.cfg.ClientID, ts)
	if err != nil {
		return "", fmt.Errorf("sign token request: %w", err)
	}
	h := http.Header{}
	h.Set("X-CLIENT-KEY", c.cfg.ClientID)
	h.Set("X-TIMESTAMP", ts)
	h.Set("X-SIGNATURE", sig)
	body, _ := Marshal(TokenRequest{GrantType: "client_credentials"})
	var out TokenResponse
	if err := c.exchange(ctx, OpTokenB2B, body, h, &out); err != nil {
		return "", err
	}
	if out.AccessToken == "" {
		return "", &Error{Op: OpTokenB2B, HTTPStatus: 200, Code: out.ResponseCode, Message: out.ResponseMessage,
			Outcome: RetryLater, Err: errors.New("answer has no accessToken")}
	}
	life := out.ExpiresIn.Duration()
	if life <= 0 {
		life = DefaultTokenLifetime
	}
	c.token, c.tokenExp = out.AccessToken, c.now().Add(life)
	c.tokensFetched.Add(1)
	if c.cfg.TokenCache != nil {
		if err := c.cfg.TokenCache.PutToken(ctx, cacheName, secret.New(c.token), c.tokenExp); err != nil {
			c.log.LogAttrs(ctx, slog.LevelDebug, "token cache", slog.String("error", err.Error()))
		}
	}
	return c.token, nil
}

func (c *Client) b2bCacheName() string { return "b2b " + c.cfg.ClientID + " " + c.cfg.BaseURL }

// customerCacheName names a binding's customer token in the TokenCache by
// a digest of its authCode, never the authCode itself.
func (c *Client) customerCacheName(authCode secret.Value) string {
	return "b2b2c " + authKey(authCode) + " " + c.cfg.BaseURL
}

type customerToken struct {
	token secret.Value
	exp   time.Time
}

func authKey(authCode secret.Value) string {
	sum := sha256.Sum256([]byte(authCode.Reveal()))
	return hex.EncodeToString(sum[:])
}

// customerToken returns the cached B2B2C token of a binding, from memory
// or the TokenCache, exchanging its authCode for a new one when missing or
// about to expire, or always when fresh is set (docs/doku.md#b2b2c-token).
func (c *Client) customerToken(ctx context.Context, authCode secret.Value, fresh bool) (secret.Value, error) {
	if authCode.IsZero() {
		return secret.Value{}, errors.New("customer-scoped call without the binding's authCode")
	}
	key := authKey(authCode)
	c.custMu.Lock()
	defer c.custMu.Unlock()
	if t, ok := c.custTokens[key]; ok && !fresh && c.now().Before(t.exp.Add(-TokenRefreshMargin)) {
		return t.token, nil
	}
	if c.cfg.TokenCache != nil && !fresh {
		tok, exp, ok, err := c.cfg.TokenCache.Token(ctx, c.customerCacheName(authCode))
		if err != nil {
			c.log.LogAttrs(ctx, slog.LevelDebug, "token cache", slog.String("error", err.Error()))
		}
		if ok && c.now().Before(exp.Add(-TokenRefreshMargin)) {
			c.custTokens[key] = customerToken{token: tok, exp: exp}
			return tok, nil
		}
	}
	ts := c.timestamp()
	sig, err := SignAsymmetric(c.cfg.PrivateKey, c.cfg.ClientID, ts)
	if err != nil {
		return secret.Value{}, fmt.Errorf("sign customer token request: %w", err)
	}
	h := http.Header{}
	h.Set("X-CLIENT-KEY", c.cfg.ClientID)
	h.Set("X-TIMESTAMP", ts)
	h.Set("X-SIGNATURE", sig)
	body, _ := Marshal(TokenRequest{GrantType: "authorization_code", AuthCode: authCode.Reveal()})
	var out B2B2CTokenResponse
	if err := c.exchange(ctx, OpTokenB2B2C, body, h, &out); err != nil {
		return secret.Value{}, err
	}
	if out.AccessToken == "" {
		return secret.Value{}, &Error{Op: OpTokenB2B2C, HTTPStatus: 200, Code: out.ResponseCode, Message: out.ResponseMessage,
			Outcome: RetryLater, Err: errors.New("answer has no accessToken")}
	}
	t := customerToken{token: secret.New(out.AccessToken), exp: c.now().Add(customerTokenLifetime(out.AccessTokenExpiryTime, c.now()))}
	c.custTokens[key] = t
	if c.cfg.TokenCache != nil {
		if err := c.cfg.TokenCache.PutToken(ctx, c.customerCacheName(authCode), t.token, t.exp); err != nil {
			c.log.LogAttrs(ctx, slog.LevelDebug, "token cache", slog.String("error", err.Error()))
		}
	}
	return t.token, nil
}

// customerTokenLifetime reads accessTokenExpiryTime, an ISO-8601 time per
// SNAP or a count of seconds per an SDK fixture (UNCONFIRMED, docs/doku.md#b2b2c-token).
func customerTokenLifetime(expiry string, now time.Time) time.Duration {
	if t, err := time.Parse(time.RFC3339, expiry); err == nil {
		// Already past by our clock: use it once, fetch anew next time.
		return max(t.Sub(now), 0)
	}
	if n, err := strconv.Atoi(expiry); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return DefaultTokenLifetime
}

// forgetCustomerToken drops a binding's customer token from memory and
// from the TokenCache.
func (c *Client) forgetCustomerToken(ctx context.Context, authCode secret.Value) {
	c.custMu.Lock()
	defer c.custMu.Unlock()
	delete(c.custTokens, authKey(authCode))
	c.uncache(ctx, c.customerCacheName(authCode))
}

// dropToken drops the B2B token DOKU refused, from memory and from the
// TokenCache, so that no later process uses it either.
func (c *Client) dropToken(ctx context.Context, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
		c.uncache(ctx, c.b2bCacheName())
	}
}

func (c *Client) uncache(ctx context.Context, name string) {
	if c.cfg.TokenCache == nil {
		return
	}
	if err := c.cfg.TokenCache.DeleteToken(context.WithoutCancel(ctx), name); err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "token cache", slog.String("error", err.Error()))
	}
}

// call sends one signed transactional request and decodes a successful
// answer into out.
func (c *Client) call(ctx context.Context, op Op, req any, opts RequestOptions, extra http.Header, out any) error {
	body, err := Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", op, err)
	}
	token, err := c.accessToken(ctx)
	if err != nil {
		return err
	}
	extID := cmp.Or(opts.ExternalID, NewExternalID(c.now()))
	waitMax, budget := cmp.Or(c.cfg.RetryWaitMax, DefaultRetryWaitMax), c.budget(ctx)
	for attempt := 0; ; attempt++ {
		ts := c.timestamp()
		h := http.Header{}
		for k, v := range extra {
			h[k] = v
		}
		h.Set("Authorization", "Bearer "+token)
		h.Set("X-TIMESTAMP", ts)
		h.Set("X-SIGNATURE", SignSymmetric(c.cfg.ClientSecret.Reveal(), http.MethodPost, op.Path(), token, body, ts))
		h.Set("X-PARTNER-ID", c.cfg.ClientID)
		h.Set("X-EXTERNAL-ID", extID)
		err = c.exchange(ctx, op, body, h, out)
		wait, again := retryWait(err, attempt, waitMax)
		if !again {
			break
		}
		done, ok := budget.start(wait)
		if !ok {
			c.log.LogAttrs(ctx, slog.LevelDebug, "doku retry later: the run's retry budget is spent", slog.String("op", op.String()))
			break
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "doku retry later", slog.String("op", op.String()), slog.Duration("wait", wait))
		waited := sleep(ctx, wait)
		done()
		if !waited {
			break
		}
	}
	var e *Error
	if errors.As(err, &e) && e.HTTPStatus == 401 {
		// A token was refused: the next call fetches new ones.
		c.dropToken(ctx, token)
		if !opts.AuthCode.IsZero() {
			c.forgetCustomerToken(ctx, opts.AuthCode)
		}
	}
	return err
}

// exchange posts body with headers h and classifies the answer.
func (c *Client) exchange(ctx context.Context, op Op, body []byte, h http.Header, out any) error {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return &Error{Op: op, Outcome: RetryLater, Err: fmt.Errorf("rate limit: %w", err)}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+op.Path(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: build request: %w", op, err)
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	// Whether the request may have left decides between "nothing
	// happened" and "outcome unknown" when no answer comes back. Once a
	// connection is in hand, some of the request may be on the wire.
	var mayHaveLeft atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { mayHaveLeft.Store(true) },
	}))
	noAnswer := func(status int, cause error) *Error {
		o := RetryLater
		if op.Mutating() && mayHaveLeft.Load() {
			o = Unknown
		}
		return &Error{Op: op, HTTPStatus: status, Outcome: o, Err: cause}
	}

	start := c.now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "doku call failed", slog.String("op", op.String()), slog.String("error", err.Error()))
		return noAnswer(0, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return noAnswer(resp.StatusCode, fmt.Errorf("read answer: %w", err))
	}
	var res Result
	if err := json.Unmarshal(raw, &res); err != nil || len(res.ResponseCode) != 7 {
		if err == nil {
			err = fmt.Errorf("answer has no responseCode")
		}
		return noAnswer(resp.StatusCode, fmt.Errorf("decode answer: %w", err))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "doku call", slog.String("op", op.String()),
		slog.Int("http_status", resp.StatusCode), slog.String("snap_code", string(res.ResponseCode)),
		slog.Duration("took", c.now().Sub(start)))

	outcome := Classify(res.ResponseCode)
	if outcome == Succeeded {
		// A 409 whose body is a success is DOKU replaying the answer to an
		// X-EXTERNAL-ID it has seen with the same body (docs/doku.md#idempotency): it succeeded.
		if err := json.Unmarshal(raw, out); err != nil {
			return noAnswer(resp.StatusCode, fmt.Errorf("decode answer: %w", err))
		}
		return nil
	}
	if outcome == Unknown && !op.Mutating() {
		outcome = RetryLater
	}
	e := &Error{Op: op, HTTPStatus: resp.StatusCode, Code: res.ResponseCode, Message: res.ResponseMessage, Outcome: outcome}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}
