package daemon

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// stateView is everything a notification could change in the state.
type stateView struct {
	Serial  int64
	Pending map[string]int
	Inbox   []state.Notification
	Charges []state.Charge
	Events  []state.Event
}

func (e *env) view() stateView {
	e.tb.Helper()
	ctx := context.Background()
	var v stateView
	var err error
	if v.Serial, err = e.store.Serial(ctx); err != nil {
		e.tb.Fatal(err)
	}
	if v.Pending, err = e.store.PendingCounts(ctx); err != nil {
		e.tb.Fatal(err)
	}
	if v.Inbox, err = e.store.PendingNotifications(ctx); err != nil {
		e.tb.Fatal(err)
	}
	if v.Charges, err = e.store.Charges(ctx); err != nil {
		e.tb.Fatal(err)
	}
	v.Events = e.events()
	return v
}

// notifying is a daemon with a charge awaiting its customer, ready for
// DOKU's notification about it.
type notifying struct {
	*env
	r       *running
	ns      notifySettings // the daemon's receiver's
	attempt state.Charge   // as the daemon started
	n       *sandbox.Notifier
	token   string // issued by the daemon's token endpoint
	body    []byte // the genuine notification: the customer paid
}

func newNotifying(t *testing.T) *notifying {
	t.Helper()
	return newNotifyingIn(t, notifySettings{})
}

// newNotifyingIn is newNotifying with the daemon's receiver in ns, and the
// notifier signing as that mode wants.
func newNotifyingIn(t *testing.T, ns notifySettings) *notifying {
	t.Helper()
	e := newEnv(t, envOptions{hcl: bindingHCL + gymHCL, at: gymFirst.Add(time.Minute)})
	e.bindAlice()
	c := e.chargeGym()
	if c.Status != state.ChargeAwaitingCustomer {
		t.Fatalf("charge Status=%s, want %s", c.Status, state.ChargeAwaitingCustomer)
	}
	r := e.start(daemonOptions{notify: ns})
	r.cycles.wait(t, 0, "at start", func(CycleReport) bool { return true })
	n := e.notifier(r.url)
	n.Mode = ns.mode
	token, err := n.Token(context.Background())
	if err != nil {
		t.Fatalf("token from the daemon: %v", err)
	}
	return &notifying{env: e, r: r, ns: ns, attempt: c, n: n, token: token, body: e.notification(c, doku.TxSuccess)}
}

// notifyConfigs are the daemon's supported notification settings: each
// mode with the token it issued required, and the signing modes with any
// token (in symmetric mode the token is in what is signed).
var notifyConfigs = []struct {
	name string
	ns   notifySettings
}{
	{"Asymmetric", notifySettings{doku.ModeAsymmetric, doku.TokenIssued}},
	{"Symmetric", notifySettings{doku.ModeSymmetric, doku.TokenIssued}},
	{"TokenOnly", notifySettings{doku.ModeTokenOnly, doku.TokenIssued}},
	{"SymmetricAnyToken", notifySettings{doku.ModeSymmetric, doku.TokenAny}},
	{"AsymmetricAnyToken", notifySettings{doku.ModeAsymmetric, doku.TokenAny}},
}

// mode and tokenSetting are the daemon's settings, defaults resolved.
func (ns notifySettings) modeOrDefault() doku.NotificationMode {
	if ns.mode == "" {
		return doku.DefaultNotificationMode
	}
	return ns.mode
}

func (ns notifySettings) tokenOrDefault() doku.NotificationToken {
	if ns.token == "" {
		return doku.DefaultNotificationToken
	}
	return ns.token
}

// request is a genuine notification request: signed as DOKU signs in the
// daemon's mode, with the daemon's token.
func (s *notifying) request(externalID string, body []byte) *http.Request {
	s.tb.Helper()
	req, err := s.n.Request(context.Background(), s.token, externalID, body)
	if err != nil {
		s.tb.Fatal(err)
	}
	return req
}

// forgery is one way a notification can be wrong, and the HTTP status the
// daemon must refuse it with.
type forgery struct {
	name   string
	status int
	req    func(i int) *http.Request
}

// clone copies a signed request with another body and X-EXTERNAL-ID, so
// that one signature serves many requests.
func clone(tmpl *http.Request, body []byte, externalID string) *http.Request {
	req := tmpl.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("X-EXTERNAL-ID", externalID)
	return req
}

// jwt is an RS256 token of claims signed by key, in the form the
// daemon's receiver issues.
func jwt(tb testing.TB, key *rsa.PrivateKey, claims string) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims))
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// forgeries are the representative mix of a notification's checks that are
// forgeries in the daemon's settings, each about the charge awaiting its
// customer, so that one let through would show. What a setting does not
// check is no forgery there: any X-SIGNATURE in token-only mode, and in
// asymmetric mode with any token, the token (it is not signed).
func (s *notifying) forgeries(t *testing.T) []forgery {
	t.Helper()
	ctx := context.Background()
	now := s.clock.Now()
	mode, required := s.ns.modeOrDefault(), s.ns.tokenOrDefault() == doku.TokenIssued
	good := s.request("template", s.body)
	ts := good.Header.Get("X-TIMESTAMP")
	dokuKey, merchantKey := s.sb.Config.DOKUPrivateKey, s.merchantKey()
	clientID := s.sb.Config.ClientID
	extID := func(kind string, i int) string { return fmt.Sprintf("forged-%s-%d", kind, i) }
	// edited is the genuine template with one header changed.
	edited := func(name, value string) *http.Request {
		req := good.Clone(ctx)
		if value == "" {
			req.Header.Del(name)
		} else {
			req.Header.Set(name, value)
		}
		return req
	}
	// built is body with token, signed by n as it signs (genuinely, for
	// s.n: DOKU's key or the client secret, over that very token).
	built := func(n sandbox.Notifier, token string, body []byte) *http.Request {
		req, err := n.Request(ctx, token, "template", body)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	// resigned is body signed genuinely.
	resigned := func(body []byte) *http.Request { return built(*s.n, s.token, body) }
	// signedAt is the notification signed genuinely at another time.
	signedAt := func(d time.Duration) *http.Request {
		n := *s.n
		n.NowFunc = func() time.Time { return now.Add(d) }
		return built(n, s.token, s.body)
	}
	// sig is X-SIGNATURE in mode m over the given parts, made with DOKU's
	// real key or the real client secret.
	sig := func(m doku.NotificationMode, path, token string, body []byte, ts string) string {
		if m == doku.ModeSymmetric {
			return doku.SignSymmetric(s.sb.Config.ClientSecret.Reveal(), http.MethodPost, path, token, body, ts)
		}
		v, err := doku.SignAsymmetricTransaction(dokuKey, http.MethodPost, path, body, ts)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// expired is a token the daemon's key issued an hour ago: long
	// expired (tokens live 15 minutes).
	expired := func() string {
		hourAgo := func() time.Time { return s.clock.Now().Add(-time.Hour) }
		srv := httptest.NewServer(http.HandlerFunc(s.receiver(hourAgo).ServeToken))
		defer srv.Close()
		n := *s.n
		n.TokenURL, n.NowFunc = srv.URL+doku.PathTokenB2B, hourAgo
		tok, err := n.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	claims := func(client string) string {
		return fmt.Sprintf(`{"exp":%d,"iss":"ddctl","clientId":%q}`, now.Add(10*time.Minute).Unix(), client)
	}
	var m map[string]any
	json.Unmarshal(s.body, &m)
	delete(m, "amount")
	noAmount, _ := json.Marshal(m)
	m["amount"], m["padding"] = map[string]string{"value": "150000.00", "currency": "IDR"}, strings.Repeat("x", maxNotificationBody)
	oversized, _ := json.Marshal(m)
	failed := s.notification(s.attempt, doku.TxFailed)
	later, _ := time.Parse(time.RFC3339, ts)
	otherTS := later.Add(time.Second).In(doku.ExternalIDZone).Format(doku.TimestampLayout)
	// ours is a token the daemon's key made for its client, not the one
	// in the template: valid, but not what the template's HMAC signs.
	ours := jwt(t, merchantKey, claims(clientID))
	foreign := jwt(t, dokuKey, claims(clientID))

	if required {
		// A control: ours, signed as DOKU signs, is accepted, so the
		// forged tokens below fail for what they forge.
		if _, err := s.receiverIn(s.clock.Now, s.ns).Verify(clone(built(*s.n, ours, s.body), s.body, "control"), s.body); err != nil {
			t.Fatalf("control token refused: %v", err)
		}
	}

	same := func(name string, status int, tmpl *http.Request, body []byte) forgery {
		return forgery{name, status, func(i int) *http.Request { return clone(tmpl, body, extID(name, i)) }}
	}
	// Whatever the settings: headers, freshness, the body.
	out := []forgery{
		same("NoToken", 401, edited("Authorization", ""), s.body),
		{"NoExternalID", 400, func(i int) *http.Request {
			req := clone(good, s.body, "x")
			req.Header.Del("X-EXTERNAL-ID")
			return req
		}},
		same("TimestampTooOld", 401, signedAt(-6*time.Minute), s.body),
		same("TimestampInFuture", 401, signedAt(6*time.Minute), s.body),
		same("TimestampNotRFC3339", 400, edited("X-TIMESTAMP", "yesterday"), s.body),
		same("WrongPartnerID", 401, edited("X-PARTNER-ID", "other-client"), s.body),
		same("TruncatedJSON", 400, resigned(s.body[:len(s.body)/2]), s.body[:len(s.body)/2]),
		same("AmountMissing", 400, resigned(noAmount), noAmount),
		same("BodyOver64KiB", 413, resigned(oversized), oversized),
	}
	if required {
		// Each signed over the token it carries, where the mode signs
		// it: refused for the token alone.
		out = append(out,
			same("TokenNotIssuedByDaemon", 401, built(*s.n, foreign, s.body), s.body),
			same("TokenOfOtherClient", 401, built(*s.n, jwt(t, merchantKey, claims("other-client")), s.body), s.body),
			same("ExpiredToken", 401, built(*s.n, expired, s.body), s.body),
			same("TamperedToken", 401, built(*s.n, s.token[:len(s.token)-4]+"AAAA", s.body), s.body),
			same("GarbageToken", 401, built(*s.n, "garbage", s.body), s.body),
		)
	} else {
		// Any token, but a token: ':' would blur what is signed.
		out = append(out, same("TokenNotB64Token", 401, built(*s.n, "not:a:token", s.body), s.body))
	}
	if !required && mode == doku.ModeSymmetric {
		// The token is signed: one swapped in after signing, even one
		// the daemon issued, breaks the HMAC.
		out = append(out,
			same("TokenSwappedAfterSigning", 401, edited("Authorization", "Bearer "+foreign), s.body),
			same("IssuedTokenSwappedIn", 401, edited("Authorization", "Bearer "+ours), s.body),
			same("ExpiredTokenSwappedIn", 401, edited("Authorization", "Bearer "+expired), s.body),
		)
	}
	if mode == doku.ModeTokenOnly {
		return out
	}
	// The signature, in the one configured mode.
	wrong, wrongName := *s.n, "WrongRSAKey"
	otherMode := doku.ModeSymmetric
	if mode == doku.ModeSymmetric {
		wrong.ClientSecret, wrongName = secret.New("not-the-client-secret"), "WrongClientSecret"
		otherMode = doku.ModeAsymmetric
	} else {
		wrong.DOKUKey = merchantKey // not DOKU's
	}
	out = append(out,
		forgery{"BitFlippedBody", 401, func(i int) *http.Request {
			body := bytes.Clone(s.body)
			bit := (i * 7919) % (len(body) * 8)
			body[bit/8] ^= 1 << (bit % 8)
			return clone(good, body, extID("BitFlippedBody", i))
		}},
		same(wrongName, 401, built(wrong, s.token, s.body), s.body),
		same("SignatureOfOtherPath", 401, edited("X-SIGNATURE", sig(mode, NotificationPath+"/other", s.token, s.body, ts)), s.body),
		same("SignatureOfOtherTimestamp", 401, edited("X-TIMESTAMP", otherTS), s.body),
		same("SignatureOfOtherBody", 401, edited("X-SIGNATURE", sig(mode, NotificationPath, s.token, failed, ts)), s.body),
		same("SignatureOfOtherMode", 401, edited("X-SIGNATURE", sig(otherMode, NotificationPath, s.token, s.body, ts)), s.body),
		same("NoSignature", 400, edited("X-SIGNATURE", ""), s.body),
	)
	if mode == doku.ModeSymmetric {
		out = append(out, same("SignatureOfOtherToken", 401, edited("X-SIGNATURE", sig(mode, NotificationPath, ours, s.body, ts)), s.body))
	}
	return out
}

// 1,000 forged notifications, a mix of every check DOKU's signature,
// token, headers and body must pass in the daemon's settings, are each
// refused with 401, 400 or 413 and counted as refused; the state (serial,
// inbox, charges, events) is exactly as before and no cycle processed
// anything. So in every supported setting. The customer then pays and the
// genuine notification, sent the same way, goes through; with any token,
// one carrying a token the daemon did not issue, signed as DOKU signs, is
// genuine too.
func TestNotificationForgeriesChangeNothing(t *testing.T) {
	for _, nc := range notifyConfigs {
		t.Run(nc.name, func(t *testing.T) { forgeriesChangeNothing(t, nc.ns) })
	}
}

func forgeriesChangeNothing(t *testing.T, ns notifySettings) {
	s := newNotifyingIn(t, ns)
	forgeries := s.forgeries(t)
	before, cycles := s.view(), s.r.cycles.len()
	client := &http.Client{}
	const total = 1000
	kinds := map[string]int{}
	for i := range total {
		f := forgeries[i%len(forgeries)]
		if status, code := send(t, client, f.req(i)); status != f.status {
			t.Fatalf("%s #%d: HTTP %d (%s), want %d", f.name, i, status, code, f.status)
		}
		kinds[f.name]++
	}
	if diff := cmp.Diff(before, s.view()); diff != "" {
		t.Fatalf("forged notifications changed the state (-before +after):\n%s", diff)
	}
	for _, c := range s.r.cycles.all()[cycles:] {
		if c.Notifications != 0 {
			t.Fatalf("a cycle processed %d notifications after forgeries only", c.Notifications)
		}
	}
	text := s.r.scrape(t)
	if got, _ := metric(text, "ddctl_notifications_total", "result", "refused"); got != total {
		t.Fatalf(`ddctl_notifications_total{result="refused"}=%v, want %d`, got, total)
	}
	if got, _ := metric(text, "ddctl_notifications_total", "result", "accepted"); got != 0 {
		t.Fatalf(`ddctl_notifications_total{result="accepted"}=%v, want 0`, got)
	}
	t.Logf("%s, token %s: %d forgeries of %d kinds refused: %v", s.ns.modeOrDefault(), s.ns.tokenOrDefault(), total, len(kinds), kinds)

	// The customer pays: a notification on a token alone is confirmed by
	// a status inquiry, which must find it paid.
	if err := s.sb.Server.Confirm(context.Background(), path.Base(s.attempt.WebRedirectURL), true); err != nil {
		t.Fatal(err)
	}
	from := s.r.cycles.len()
	duplicates := 0
	if s.ns.tokenOrDefault() == doku.TokenAny {
		// A token the daemon did not issue (DOKU's own, say), signed as
		// DOKU signs: not a forgery.
		req, err := s.n.Request(context.Background(), "dokus-own-token."+strings.Repeat("A", 40), "genuine-foreign-token", s.body)
		if err != nil {
			t.Fatal(err)
		}
		if status, code := send(t, client, req); status != http.StatusOK || code != string(doku.CodeNotifyAck) {
			t.Fatalf("genuine notification with a token the daemon did not issue: HTTP %d %s, want 200 %s", status, code, doku.CodeNotifyAck)
		}
		duplicates = 1 // the one below reports the same event
	}
	if status, code := send(t, client, s.request("genuine-1", s.body)); status != http.StatusOK || code != string(doku.CodeNotifyAck) {
		t.Fatalf("genuine notification: HTTP %d %s, want 200 %s", status, code, doku.CodeNotifyAck)
	}
	text = s.r.scrape(t)
	if got, _ := metric(text, "ddctl_notifications_total", "result", "accepted"); got != 1 {
		t.Fatalf(`ddctl_notifications_total{result="accepted"}=%v after the genuine notification, want 1`, got)
	}
	if got, _ := metric(text, "ddctl_notifications_total", "result", "duplicate"); got != float64(duplicates) {
		t.Fatalf(`ddctl_notifications_total{result="duplicate"}=%v, want %d`, got, duplicates)
	}
	s.r.cycles.wait(t, from, "processing the genuine notification", func(c CycleReport) bool { return c.Notifications > 0 })
	if c := s.charge(); c.Status != state.ChargeSucceeded {
		t.Fatalf("charge Status=%s after the genuine notification, want %s", c.Status, state.ChargeSucceeded)
	}
}

// DOKU's notification as the sandbox sends it over HTTP (a token from the
// daemon's token endpoint, then the post signed in the sandbox's mode) to
// a daemon in each supported setting: once the customer pays, the charge
// awaiting its customer succeeds. A signed notification settles it by
// itself; one on a token alone (token-only) is confirmed by a status
// inquiry first.
func TestSandboxNotifiesDaemon(t *testing.T) {
	for _, nc := range notifyConfigs {
		t.Run(nc.name, func(t *testing.T) { sandboxNotifiesDaemon(t, nc.ns.mode, nc.ns) })
	}
}

// By default the sandbox signs as DOKU documents it (symmetric,
// HMAC-SHA512 with the client secret, over the token the daemon issued)
// and the daemon verifies exactly that: each on its default meets the
// other set to symmetric with the token required.
func TestSandboxNotifiesDaemonByDefault(t *testing.T) {
	t.Run("BothDefault", func(t *testing.T) { sandboxNotifiesDaemon(t, "", notifySettings{}) })
	t.Run("SandboxDefault", func(t *testing.T) {
		sandboxNotifiesDaemon(t, "", notifySettings{doku.ModeSymmetric, doku.TokenIssued})
	})
	t.Run("DaemonDefault", func(t *testing.T) { sandboxNotifiesDaemon(t, doku.ModeSymmetric, notifySettings{}) })
}

// sandboxNotifiesDaemon has the sandbox sign in mode signs ("" its
// default) and notify a daemon in ns.
func sandboxNotifiesDaemon(t *testing.T, signs doku.NotificationMode, ns notifySettings) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, envOptions{hcl: bindingHCL + gymHCL, at: gymFirst.Add(time.Minute), notify: true,
		sandbox: func(c *sandbox.Config) { c.NotifyMode = signs }})
	e.bindAlice()
	r := e.start(daemonOptions{ln: e.ln, notify: ns})
	i, _ := r.cycles.wait(t, 0, "charging the occurrence", func(c CycleReport) bool { return c.Succeeded == 1 })
	c := e.charge()
	if c.Status != state.ChargeAwaitingCustomer {
		t.Fatalf("charge Status=%s, want %s", c.Status, state.ChargeAwaitingCustomer)
	}
	statuses := e.sb.Calls(doku.OpStatus)
	if err := e.sb.Server.Confirm(ctx, path.Base(c.WebRedirectURL), true); err != nil {
		t.Fatal(err)
	}
	// Deliver now rather than at the sandbox's next tick; the daemon
	// answers before Tick returns.
	if err := e.sb.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	text := r.scrape(t)
	accepted, _ := metric(text, "ddctl_notifications_total", "result", "accepted")
	refused, _ := metric(text, "ddctl_notifications_total", "result", "refused")
	if accepted != 1 || refused != 0 {
		t.Fatalf("the daemon (mode %s, token %s) took %v and refused %v of the sandbox's notifications (signed %s), want 1 and 0",
			ns.modeOrDefault(), ns.tokenOrDefault(), accepted, refused, cmpOr(signs, "by default"))
	}
	r.cycles.wait(t, i+1, "processing the sandbox's notification", func(c CycleReport) bool { return c.Notifications > 0 })
	if got := e.charge(); got.Status != state.ChargeSucceeded {
		t.Fatalf("charge Status=%s after the sandbox's notification, want %s", got.Status, state.ChargeSucceeded)
	}
	inquiries := e.sb.Calls(doku.OpStatus) - statuses
	switch signed := ns.modeOrDefault() != doku.ModeTokenOnly; {
	case signed && inquiries != 0:
		t.Errorf("%d status inquiries, want none: a signed notification settles the charge", inquiries)
	case !signed && inquiries < 1:
		t.Errorf("%d status inquiries, want the notification on a token alone confirmed by one", inquiries)
	}
	if n := e.countEvents(state.EventChargeSucceeded); n != 1 {
		t.Errorf("charge.succeeded events=%d, want 1", n)
	}
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// DOKU sends one event more than once (docs/doku.md#notification-retries), under the same
// X-EXTERNAL-ID or not: each is answered 200 2005600, the inbox has it
// once, and the charge awaiting its customer succeeds with one
// charge.succeeded event.
func TestNotificationResentIsRecordedOnce(t *testing.T) {
	s := newNotifying(t)
	ctx := context.Background()
	client := &http.Client{}
	// While cycles are held, only the HTTP side acts: what it recorded
	// can be counted before anything is processed.
	s.r.hold()
	held := true
	defer func() {
		if held {
			s.r.release()
		}
	}()
	var externalIDs []string
	for i := range 5 {
		externalIDs = append(externalIDs, "same-id", fmt.Sprintf("other-id-%d", i))
	}
	for _, id := range externalIDs {
		if status, code := send(t, client, s.request(id, s.body)); status != http.StatusOK || code != string(doku.CodeNotifyAck) {
			t.Fatalf("notification %s: HTTP %d %s, want 200 %s", id, status, code, doku.CodeNotifyAck)
		}
	}
	if n, err := s.store.PendingNotificationCount(ctx); err != nil || n != 1 {
		t.Fatalf("inbox=%d (%v) after %d sends of one event, want 1", n, err, len(externalIDs))
	}
	text := s.r.scrape(t)
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ddctl_notifications_total", []string{"result", "accepted"}, 1},
		{"ddctl_notifications_total", []string{"result", "duplicate"}, float64(len(externalIDs) - 1)},
		{"ddctl_notification_queue_depth", nil, 1},
		{"ddctl_pending_items", []string{"kind", "notification"}, 1},
	} {
		if got, _ := metric(text, m.name, m.labels...); got != m.want {
			t.Fatalf("%s%v=%v, want %v", m.name, m.labels, got, m.want)
		}
	}

	from := s.r.cycles.len()
	s.r.release()
	held = false
	s.r.cycles.wait(t, from, "processing the notification", func(c CycleReport) bool { return c.Notifications > 0 })
	if c := s.charge(); c.Status != state.ChargeSucceeded || c.ReferenceNo != s.attempt.ReferenceNo {
		t.Fatalf("charge %+v, want succeeded", c)
	}
	// Once processed, a resend is still answered 200 and still not
	// recorded again.
	if status, _ := send(t, client, s.request("same-id", s.body)); status != http.StatusOK {
		t.Fatalf("resend after processing: HTTP %d", status)
	}
	if status, _ := send(t, client, s.request("late-id", s.body)); status != http.StatusOK {
		t.Fatalf("resend after processing: HTTP %d", status)
	}
	processed := 0
	for _, c := range s.r.cycles.all() {
		processed += c.Notifications
	}
	if processed != 1 {
		t.Fatalf("cycles processed %d notifications, want 1", processed)
	}
	if got, _ := metric(s.r.scrape(t), "ddctl_notifications_total", "result", "accepted"); got != 1 {
		t.Fatalf(`ddctl_notifications_total{result="accepted"}=%v after resends, want 1`, got)
	}
	if n := s.countEvents(state.EventChargeSucceeded); n != 1 {
		t.Fatalf("charge.succeeded events=%d, want 1", n)
	}
}

// /healthz answers while the process serves, on both listeners; /readyz
// and /metrics are the admin listener's alone: /readyz says why the
// daemon is not ready until a configuration is applied, and 200 once a
// cycle reconciles it; /metrics has every family the daemon documents.
func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, envOptions{noApply: true, hcl: `
refund "a" {
  payment = "INV-1"
  binding = binding.payer
  reason  = "test"
}
`})
	e.sb.Pay(t, "INV-1", 5000000)
	r := e.start(daemonOptions{configure: func(c *Config) { c.ReconcileEvery = 200 * time.Millisecond }})
	r.cycles.wait(t, 0, "at start", func(CycleReport) bool { return true })

	for _, base := range []string{r.url, r.admin} {
		if status, body := get(t, base+"/healthz"); status != http.StatusOK {
			t.Fatalf("%s/healthz: HTTP %d %s", base, status, body)
		}
	}
	for _, path := range []string{"/readyz", "/metrics"} {
		if status, _ := get(t, r.url+path); status != http.StatusNotFound {
			t.Fatalf("%s on DOKU's listener: HTTP %d, want 404 (it is the admin listener's)", path, status)
		}
	}
	status, body := get(t, r.admin+"/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "no configuration has been applied") {
		t.Fatalf("/readyz before any apply: HTTP %d %q, want 503 saying no configuration was applied", status, body)
	}
	if got := e.sb.Calls(doku.OpRefund); got != 0 {
		t.Fatalf("refund calls=%d before any apply, want 0", got)
	}

	e.apply(e.cfg)
	from := r.cycles.len()
	i, _ := r.cycles.wait(t, from, "after the apply", func(c CycleReport) bool { return c.Trigger == triggerFull })
	r.cycles.wait(t, i+1, "after the apply", func(c CycleReport) bool { return c.Trigger == triggerFull && c.Err == nil })
	if status, body := get(t, r.admin+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz after the apply: HTTP %d %q, want 200", status, body)
	}
	if got := e.sb.Calls(doku.OpRefund); got != 1 {
		t.Fatalf("refund calls=%d after the apply, want 1", got)
	}

	text := r.scrape(t)
	for _, m := range []struct {
		name   string
		labels []string
	}{
		{"ddctl_reconcile_runs_total", []string{"trigger", "full", "result", "success"}},
		{"ddctl_api_calls_total", []string{"operation", "refund", "code", "2005800"}},
		{"ddctl_api_calls_total", []string{"operation", "payment_status", "code", "2005500"}},
		{"ddctl_pending_items", []string{"kind", "charge"}},
		{"ddctl_pending_items", []string{"kind", "refund"}},
		{"ddctl_pending_items", []string{"kind", "binding"}},
		{"ddctl_pending_items", []string{"kind", "operation"}},
		{"ddctl_pending_items", []string{"kind", "notification"}},
		{"ddctl_pending_items", []string{"kind", "event"}},
		{"ddctl_notification_queue_depth", nil},
		{"ddctl_last_successful_reconcile_timestamp_seconds", nil},
		{"ddctl_reconcile_duration_seconds_count", []string{"trigger", "full"}},
		{"ddctl_reconcile_duration_seconds_bucket", []string{"trigger", "full", "le", "+Inf"}},
		{"ddctl_actions_total", []string{"kind", "refund", "status", "succeeded"}},
	} {
		if _, ok := metric(text, m.name, m.labels...); !ok {
			t.Errorf("/metrics has no %s%v", m.name, m.labels)
		}
	}
	if v, _ := metric(text, "ddctl_api_calls_total", "operation", "refund"); v != 1 {
		t.Errorf(`ddctl_api_calls_total{operation="refund"}=%v, want 1`, v)
	}
	if v, _ := metric(text, "ddctl_last_successful_reconcile_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("ddctl_last_successful_reconcile_timestamp_seconds=%v, want about now", v)
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
}

// A charge occurrence fires at its time in a cycle of its own (due,
// targeting the occurrence), not before; a refund with not_before fires at
// that time the same way.
func TestScheduleFiresAtItsTime(t *testing.T) {
	notBefore := gymFirst.Add(time.Second)
	e := newEnv(t, envOptions{at: gymFirst.Add(-time.Hour), hcl: bindingHCL + gymHCL + fmt.Sprintf(`
refund "later" {
  payment    = "INV-1"
  binding    = binding.payer
  reason     = "scheduled"
  not_before = %q
}
`, notBefore.Format(time.RFC3339))})
	e.bindAlice()
	e.sb.Pay(t, "INV-1", 5000000)
	var mu sync.Mutex
	var paidAt, refundedAt []time.Time
	e.clock.Set(gymFirst.Add(-1500 * time.Millisecond))
	r := e.start(daemonOptions{wrapDOKU: func(d reconcile.DOKU) reconcile.DOKU {
		return spyDOKU{DOKU: d,
			onPay: func() {
				mu.Lock()
				paidAt = append(paidAt, e.clock.Now())
				mu.Unlock()
			},
			onRefund: func() {
				mu.Lock()
				refundedAt = append(refundedAt, e.clock.Now())
				mu.Unlock()
			}}
	}})
	_, first := r.cycles.wait(t, 0, "at start", func(CycleReport) bool { return true })
	if first.Trigger != triggerFull || first.Actions != 0 || first.Err != nil {
		t.Fatalf("first cycle %+v, want a full one with no action (nothing is due yet)", first)
	}

	i, charged := r.cycles.wait(t, 1, "charging the occurrence", func(c CycleReport) bool { return c.Actions > 0 })
	if charged.Trigger != triggerDue || !slices.Equal(charged.Targets, []string{gymOccurrence}) || charged.Succeeded != 1 {
		t.Fatalf("cycle that charged: %+v, want a due cycle targeting %s, one action succeeded", charged, gymOccurrence)
	}
	_, refunded := r.cycles.wait(t, i+1, "refunding", func(c CycleReport) bool { return c.Actions > 0 })
	if refunded.Trigger != triggerDue || !slices.Equal(refunded.Targets, []string{"refund.later"}) || refunded.Succeeded != 1 {
		t.Fatalf("cycle that refunded: %+v, want a due cycle targeting refund.later, one action succeeded", refunded)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paidAt) != 1 || paidAt[0].Before(gymFirst) {
		t.Fatalf("payment requests at %v, want one, not before %s", paidAt, gymFirst)
	}
	if len(refundedAt) != 1 || refundedAt[0].Before(notBefore) {
		t.Fatalf("refund requests at %v, want one, not before %s", refundedAt, notBefore)
	}
	if c := e.charge(); c.Status != state.ChargeAwaitingCustomer || !c.Occurrence.Equal(gymFirst) {
		t.Fatalf("charge %+v, want the occurrence at %s awaiting its customer", c, gymFirst)
	}
}

// A full cycle that runs less than a second before an occurrence still
// wakes the daemon for it: the occurrence is charged at its time, not at
// the next full cycle, up to ReconcileEvery later.
func TestScheduleOccurrenceJustAfterFullCycle(t *testing.T) {
	e := newEnv(t, envOptions{at: gymFirst.Add(-time.Hour), hcl: bindingHCL + gymHCL})
	e.bindAlice()
	e.clock.Set(gymFirst.Add(-900 * time.Millisecond))
	r := e.start(daemonOptions{})
	_, first := r.cycles.wait(t, 0, "at start", func(CycleReport) bool { return true })
	if first.Actions != 0 {
		t.Skip("the first cycle ran after the occurrence: this machine is too slow for the case")
	}
	if !first.Next.Equal(gymFirst) {
		t.Fatalf("after a full cycle under a second before the occurrence, the next wake is %s, want the occurrence at %s",
			first.Next.In(jakarta), gymFirst)
	}
}

// An apply that stores a new snapshot is taken by the next full cycle,
// without a restart; the configuration on disk is never read.
func TestNewAppliedConfigurationWithoutRestart(t *testing.T) {
	const refundA = `
refund "a" {
  payment = "INV-1"
  binding = binding.payer
  reason  = "test"
}
`
	e := newEnv(t, envOptions{hcl: refundA})
	e.sb.Pay(t, "INV-1", 5000000)
	e.sb.Pay(t, "INV-2", 2500000)
	r := e.start(daemonOptions{configure: func(c *Config) { c.ReconcileEvery = 300 * time.Millisecond }})
	r.cycles.wait(t, 0, "refunding a", func(c CycleReport) bool { return c.Succeeded == 1 })

	// An edit on disk that no apply took: never reconciled.
	unapplied := e.load(refundA + `
refund "unreviewed" {
  payment = "INV-2"
  binding = binding.payer
  reason  = "test"
}
`)
	i, _ := r.cycles.wait(t, r.cycles.len(), "after the edit", func(c CycleReport) bool { return c.Trigger == triggerFull })
	r.cycles.wait(t, i+1, "after the edit", func(c CycleReport) bool { return c.Trigger == triggerFull })
	if n := len(e.sb.Ledger(t).Refunds); n != 1 {
		t.Fatalf("ledger refunds=%d after an edit no apply took, want 1", n)
	}

	// The apply.
	e.apply(unapplied)
	_, c := r.cycles.wait(t, r.cycles.len(), "taking the new configuration", func(c CycleReport) bool { return c.Actions > 0 })
	if c.Trigger != triggerFull || c.Succeeded != 1 {
		t.Fatalf("cycle %+v, want a full one refunding refund.unreviewed", c)
	}
	refunds := e.sb.Ledger(t).Refunds
	if len(refunds) != 2 || refunds[0].PartnerReferenceNo == refunds[1].PartnerReferenceNo {
		t.Fatalf("ledger refunds %+v, want INV-1's and INV-2's", refunds)
	}
}

// One daemon per state: a second one on the same state file fails Run
// with the holder's *state.LeaseHeldError; once the first stops, a new one
// starts.
func TestLeaseOneDaemonPerState(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.start(daemonOptions{})
	lease, ok, err := e.store.Lease(context.Background(), LeaseName)
	if err != nil || !ok {
		t.Fatalf("lease while the first daemon runs: %+v %v %v", lease, ok, err)
	}

	second := e.start(daemonOptions{store: e.openStore(), noWait: true})
	err = second.wait(t)
	var held *state.LeaseHeldError
	if !errors.As(err, &held) || held.Holder.ID != lease.ID {
		t.Fatalf("second daemon's Run: %v, want *state.LeaseHeldError naming %s", err, lease.ID)
	}
	if status, body := get(t, first.url+"/healthz"); status != http.StatusOK {
		t.Fatalf("first daemon after the second failed: HTTP %d %s", status, body)
	}

	if err := first.stop(t); err != nil {
		t.Fatalf("first daemon's Run: %v", err)
	}
	if _, ok, _ := e.store.Lease(context.Background(), LeaseName); ok {
		t.Fatal("the lease is still held after the daemon stopped")
	}
	third := e.start(daemonOptions{store: e.openStore()})
	third.cycles.wait(t, 0, "on the third daemon", func(c CycleReport) bool { return c.Err == nil })
}

// A Holder with no ID is the zero value cmd/ddctl happens not to use:
// state.AcquireLease gives the lease a random ID, which the daemon must
// then renew and release. It keeps the lease while it runs and lets it go
// when it stops.
func TestLeaseWithoutHolderID(t *testing.T) {
	e := newEnv(t, envOptions{})
	spy, seen := newStoreSpy()
	r := e.start(daemonOptions{daemon: spy, configure: func(c *Config) {
		c.Holder.ID = ""
		c.LeaseTTL = 300 * time.Millisecond // a heartbeat every 100 ms
	}})
	if renew := waitSeen(t, seen, "renew *"); renew != "renew <nil>" {
		t.Errorf("heartbeat: %s, want the lease renewed", renew)
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run: %v, want nil: no other daemon took the lease", err)
	}
	if l, ok, _ := e.store.Lease(context.Background(), LeaseName); ok {
		t.Errorf("lease %+v still held after the daemon stopped", l)
	}
}

// intentSpy counts refund intents, and those begun after the daemon was
// told to stop that were committed all the same.
type intentSpy struct {
	*state.Store
	stopped   *atomic.Bool
	committed atomic.Int64
	late      atomic.Int64
}

func (s *intentSpy) RecordRefundIntent(ctx context.Context, op state.Operation, r state.Refund, now time.Time) (int64, error) {
	after := s.stopped.Load()
	id, err := s.Store.RecordRefundIntent(ctx, op, r, now)
	if err == nil {
		s.committed.Add(1)
		if after {
			s.late.Add(1)
		}
	}
	return id, err
}

// Stopping the daemon while a cycle applies many refunds against a slow
// DOKU: Run returns within ShutdownTimeout with no error, no refund starts
// after the stop, everything sent has its outcome recorded, and a daemon
// started next makes the rest: each refund once at DOKU.
func TestShutdownDuringApply(t *testing.T) {
	const n = 30
	var hcl strings.Builder
	for i := range n {
		fmt.Fprintf(&hcl, "refund \"r%02d\" {\n  payment = \"INV-%02d\"\n  binding = binding.payer\n  reason  = \"test\"\n}\n", i, i)
	}
	e := newEnv(t, envOptions{hcl: hcl.String()})
	for i := range n {
		e.sb.Pay(t, fmt.Sprintf("INV-%02d", i), money.Amount(100000*(i+1)))
	}
	e.sb.Server.SetFaults(sandbox.Faults{Latency: 300 * time.Millisecond, Ops: []string{"refund"}})

	var stopped atomic.Bool
	spy := &intentSpy{stopped: &stopped}
	answered := make(chan struct{}, n)
	const shutdownTimeout = 10 * time.Second
	r := e.start(daemonOptions{
		wrapStore: func(st *state.Store) reconcile.Store { spy.Store = st; return spy },
		wrapDOKU: func(d reconcile.DOKU) reconcile.DOKU {
			return spyDOKU{DOKU: d, onRefundReply: func() { answered <- struct{}{} }}
		},
		configure: func(c *Config) { c.ShutdownTimeout = shutdownTimeout },
	})
	select {
	case <-answered:
	case <-time.After(waitFor):
		t.Fatal("no refund was answered")
	}
	start := time.Now()
	r.cancel()
	stopped.Store(true)
	if err := r.wait(t); err != nil {
		t.Fatalf("Run after the stop: %v", err)
	}
	if took := time.Since(start); took > shutdownTimeout {
		t.Fatalf("Run returned %s after the stop, over ShutdownTimeout %s", took, shutdownTimeout)
	}
	started, calls := spy.committed.Load(), e.sb.Calls(doku.OpRefund)
	if late := spy.late.Load(); late != 0 {
		t.Fatalf("%d refunds started after the stop", late)
	}
	if calls > started {
		t.Fatalf("DOKU got %d refund requests; only %d refunds were started", calls, started)
	}
	t.Logf("%d of %d refunds started before the stop; DOKU got %d requests", started, n, calls)
	if started >= n {
		t.Fatalf("all %d refunds were started before the stop took effect; the test proves nothing (make DOKU slower)", started)
	}
	ctx := context.Background()
	refunds, err := e.store.Refunds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open, err := e.store.OpenOperations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	succeeded := 0
	for addr, rf := range refunds {
		switch {
		case rf.Status == state.RefundSucceeded:
			succeeded++
		case slices.ContainsFunc(open, func(op state.Operation) bool { return op.Address == addr }):
		default:
			t.Fatalf("%s is %s with no open operation: neither settled nor to be resolved", addr, rf.Status)
		}
	}
	if ledger := len(e.sb.Ledger(t).Refunds); succeeded != ledger {
		t.Fatalf("state has %d refunds succeeded, DOKU made %d: an outcome was lost", succeeded, ledger)
	}

	// The next daemon makes the rest.
	e.sb.Server.SetFaults(sandbox.Faults{})
	next := e.start(daemonOptions{})
	next.cycles.wait(t, 0, "making the other refunds", func(c CycleReport) bool { return c.Err == nil })
	keys := map[string]int{}
	for _, rf := range e.sb.Ledger(t).Refunds {
		keys[rf.PartnerRefundNo]++
	}
	if len(keys) != n {
		t.Fatalf("ledger has %d distinct refunds, want %d", len(keys), n)
	}
	for k, c := range keys {
		if c != 1 {
			t.Fatalf("refund %s made %d times", k, c)
		}
	}
	if got := e.sb.Calls(doku.OpRefund); got != n {
		t.Fatalf("refund requests=%d in all, want %d: one sent twice", got, n)
	}
}

// webhook is the operator's event receiver: a test server, since it is
// not DOKU. It answers 500 to the first failFirst posts.
type webhook struct {
	srv       *httptest.Server
	mu        sync.Mutex
	got       []delivery
	failFirst int
	arrived   chan struct{} // a post came
}

type delivery struct {
	id, signature string
	body          []byte
	status        int
	at            time.Time
}

func newWebhook(t *testing.T, failFirst int) *webhook {
	w := &webhook{failFirst: failFirst, arrived: make(chan struct{}, 100)}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		status := http.StatusOK
		if w.failFirst > 0 {
			w.failFirst--
			status = http.StatusInternalServerError
		}
		w.got = append(w.got, delivery{r.Header.Get(EventIDHeader), r.Header.Get(EventSignatureHeader), body, status, time.Now()})
		w.mu.Unlock()
		rw.WriteHeader(status)
		w.arrived <- struct{}{}
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) deliveries() []delivery {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

// waitEvent waits until an event of type typ is delivered.
func (w *webhook) waitEvent(t *testing.T, typ state.EventType) {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		for _, d := range w.deliveries() {
			var ev Event
			if d.status == http.StatusOK && json.Unmarshal(d.body, &ev) == nil && ev.Type == typ {
				return
			}
		}
		select {
		case <-w.arrived:
		case <-timeout:
			t.Fatalf("no %s event delivered; got %+v", typ, w.deliveries())
		}
	}
}

// storeSpy is the daemon's store, telling the test what the daemon's
// own goroutines did with it, in the order they did it: "failed" after an
// event's delivery failed, "delivered ID" after one was delivered,
// "pending N" after the outbox was read (N events due), "renew <error>"
// after a heartbeat.
type storeSpy struct {
	*state.Store
	seen chan string
}

func newStoreSpy() (func(*state.Store) Store, chan string) {
	seen := make(chan string, 10000)
	return func(st *state.Store) Store { return storeSpy{st, seen} }, seen
}

func (s storeSpy) tell(what string) {
	select {
	case s.seen <- what:
	default:
		panic("storeSpy: the test does not read what it is told")
	}
}

func (s storeSpy) MarkEventFailed(ctx context.Context, id int64, errText string, next time.Time) error {
	err := s.Store.MarkEventFailed(ctx, id, errText, next)
	s.tell("failed")
	return err
}

func (s storeSpy) MarkEventDelivered(ctx context.Context, id int64, now time.Time) error {
	err := s.Store.MarkEventDelivered(ctx, id, now)
	s.tell(fmt.Sprintf("delivered %d", id))
	return err
}

func (s storeSpy) PendingEvents(ctx context.Context, now time.Time, limit int) ([]state.Event, error) {
	ev, err := s.Store.PendingEvents(ctx, now, limit)
	s.tell(fmt.Sprintf("pending %d", len(ev)))
	return ev, err
}

func (s storeSpy) RenewLease(ctx context.Context, name, id string, ttl time.Duration, now time.Time) error {
	err := s.Store.RenewLease(ctx, name, id, ttl, now)
	s.tell(fmt.Sprintf("renew %v", err))
	return err
}

// waitSeen reads seen until what comes, or prefix with any suffix when
// what ends in "*", and returns it.
func waitSeen(t *testing.T, seen chan string, what string) string {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case s := <-seen:
			if s == what || strings.HasSuffix(what, "*") && strings.HasPrefix(s, strings.TrimSuffix(what, "*")) {
				return s
			}
		case <-timeout:
			t.Fatalf("the daemon did not get to %q", what)
		}
	}
}

// events decodes the deliveries the receiver acknowledged, checking each
// one's signature and ID header.
func (w *webhook) events(t *testing.T, eventSecret string) []Event {
	t.Helper()
	var out []Event
	for _, d := range w.deliveries() {
		if d.status != http.StatusOK {
			continue
		}
		if err := VerifyEvent([]byte(eventSecret), d.signature, d.body, time.Now(), 5*time.Minute); err != nil {
			t.Fatalf("event %s: %v", d.id, err)
		}
		var ev Event
		if err := json.Unmarshal(d.body, &ev); err != nil {
			t.Fatal(err)
		}
		if strconv.FormatInt(ev.ID, 10) != d.id {
			t.Fatalf("event %d under %s %q", ev.ID, EventIDHeader, d.id)
		}
		out = append(out, ev)
	}
	return out
}

// A charge that waits for its customer and then is paid (DOKU's own
// notification, from the sandbox) gives signed events, in ID order, with
// the link and the occurrence's address; a receiver can check them.
func TestEventsWebhook(t *testing.T) {
	const eventSecret = "whsec-test"
	hook := newWebhook(t, 0)
	e := newEnv(t, envOptions{hcl: bindingHCL + gymHCL, at: gymFirst.Add(time.Minute), notify: true})
	e.bindAlice() // binding.active: the first event
	spy, seen := newStoreSpy()
	r := e.start(daemonOptions{ln: e.ln, daemon: spy, configure: func(c *Config) {
		c.EventURL, c.EventSecret = hook.srv.URL, secret.New(eventSecret)
	}})
	r.cycles.wait(t, 0, "charging the occurrence", func(c CycleReport) bool { return c.Succeeded == 1 })
	c := e.charge()
	if err := e.sb.Server.Confirm(context.Background(), path.Base(c.WebRedirectURL), true); err != nil {
		t.Fatal(err)
	}
	hook.waitEvent(t, state.EventChargeSucceeded)

	events := hook.events(t, eventSecret)
	wantTypes := []state.EventType{state.EventBindingActive, state.EventChargeAwaitingCustomer, state.EventChargeSucceeded}
	if len(events) != len(wantTypes) {
		t.Fatalf("events %+v, want types %v", events, wantTypes)
	}
	for i, ev := range events {
		if ev.Type != wantTypes[i] || (i > 0 && ev.ID <= events[i-1].ID) {
			t.Fatalf("events %+v, want types %v in ID order", events, wantTypes)
		}
	}
	paid := e.charge()
	if paid.Status != state.ChargeSucceeded {
		t.Fatalf("charge Status=%s, want %s", paid.Status, state.ChargeSucceeded)
	}
	awaiting, succeeded := events[1], events[2]
	if awaiting.Link == "" || awaiting.Link != c.WebRedirectURL {
		t.Fatalf("charge.awaiting_customer link %q, want %q", awaiting.Link, c.WebRedirectURL)
	}
	for _, ev := range []Event{awaiting, succeeded} {
		if ev.Address != gymOccurrence || ev.Charge != "recurring_charge.gym" || !ev.Occurrence.Equal(gymFirst) ||
			ev.Amount != "150000.00" || ev.Currency != "IDR" || ev.IdempotencyKey != c.PartnerReferenceNo {
			t.Fatalf("%s event %+v, want %s of IDR 150000.00 under %s", ev.Type, ev, gymOccurrence, c.PartnerReferenceNo)
		}
	}
	if succeeded.ReferenceNo == "" || succeeded.ReferenceNo != paid.ReferenceNo {
		t.Fatalf("charge.succeeded reference %q, want the payment's %q", succeeded.ReferenceNo, paid.ReferenceNo)
	}
	for _, ev := range events {
		waitSeen(t, seen, fmt.Sprintf("delivered %d", ev.ID))
	}
	if got, _ := metric(r.scrape(t), "ddctl_events_total", "result", "delivered"); got != 3 {
		t.Fatalf(`ddctl_events_total{result="delivered"}=%v, want 3`, got)
	}

	// A receiver checks what it gets: a changed body, another secret or
	// a timestamp out of its window is refused.
	d := hook.deliveries()[2]
	tampered := bytes.Replace(d.body, []byte("150000.00"), []byte("1.00"), 1)
	for name, err := range map[string]error{
		"tampered body": VerifyEvent([]byte(eventSecret), d.signature, tampered, time.Now(), 5*time.Minute),
		"wrong secret":  VerifyEvent([]byte("other"), d.signature, d.body, time.Now(), 5*time.Minute),
		"too late":      VerifyEvent([]byte(eventSecret), d.signature, d.body, time.Now().Add(6*time.Minute), 5*time.Minute),
		"too early":     VerifyEvent([]byte(eventSecret), d.signature, d.body, time.Now().Add(-6*time.Minute), 5*time.Minute),
	} {
		if err == nil {
			t.Errorf("VerifyEvent accepted a %s", name)
		}
	}
}

// A receiver answering 500 gets the event again later under the same
// X-DDCTL-Event-ID, and the events after it wait for it: the receiver
// sees them in ID order (event.go: "a failed one is tried again with
// backoff, and the ones after it wait for it").
func TestEventsWebhookRetryKeepsOrder(t *testing.T) {
	const eventSecret = "whsec-test"
	hook := newWebhook(t, 1)
	e := newEnv(t, envOptions{hcl: bindingHCL + gymHCL, at: gymFirst.Add(time.Minute), notify: true})
	e.bindAlice() // binding.active: the first event, refused
	spy, seen := newStoreSpy()
	r := e.start(daemonOptions{ln: e.ln, daemon: spy, configure: func(c *Config) {
		c.EventURL, c.EventSecret = hook.srv.URL, secret.New(eventSecret)
		// Cycles, each followed by a look at the outbox, come often.
		c.ReconcileEvery = 200 * time.Millisecond
	}})
	r.cycles.wait(t, 0, "charging the occurrence", func(c CycleReport) bool { return c.Succeeded == 1 })
	// The refusal, then two more looks at the outbox, which has
	// charge.awaiting_customer ready: it must not be sent before the
	// refused event. (Two: whatever the first look found, it was sent
	// before the second.)
	waitSeen(t, seen, "failed")
	waitSeen(t, seen, "pending *")
	waitSeen(t, seen, "pending *")
	if ds := hook.deliveries(); len(ds) != 1 {
		for _, d := range ds[1:] {
			t.Errorf("event %s delivered (HTTP %d) while event %s, refused, waits for its retry", d.id, d.status, ds[0].id)
		}
	}

	// The retry falls due some seconds on; the customer pays meanwhile,
	// and DOKU (the sandbox) notifies the daemon.
	e.clock.Advance(time.Minute)
	c := e.charge()
	if err := e.sb.Server.Confirm(context.Background(), path.Base(c.WebRedirectURL), true); err != nil {
		t.Fatal(err)
	}
	hook.waitEvent(t, state.EventChargeSucceeded)
	ds := hook.deliveries()
	if ds[0].status != http.StatusInternalServerError || !slices.ContainsFunc(ds[1:], func(d delivery) bool { return d.id == ds[0].id && d.status == 200 }) {
		t.Fatalf("deliveries %+v: want the refused event %s sent again under its ID", ds, ds[0].id)
	}
	var ids []int64
	for _, ev := range hook.events(t, eventSecret) {
		ids = append(ids, ev.ID)
	}
	if !slices.IsSorted(ids) || len(ids) != 3 || ids[0] != 1 {
		t.Fatalf("events acknowledged in the order %v, want 1, 2, 3", ids)
	}
}

func TestVerifyEvent(t *testing.T) {
	key, body := []byte("whsec-test"), []byte(`{"id":1,"type":"charge.succeeded"}`)
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	sig := SignEvent(key, at, body)
	if err := VerifyEvent(key, sig, body, at.Add(4*time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("genuine: %v", err)
	}
	other := SignEvent(key, at.Add(time.Second), body)
	_, v1, _ := strings.Cut(other, ",")
	for name, header := range map[string]string{
		"no v1":                      "t=" + strconv.FormatInt(at.Unix(), 10),
		"no t":                       v1,
		"v1 of another timestamp":    "t=" + strconv.FormatInt(at.Unix(), 10) + "," + v1,
		"not hex":                    "t=" + strconv.FormatInt(at.Unix(), 10) + ",v1=zz",
		"empty":                      "",
		"timestamp not an integer":   strings.Replace(sig, "t=", "t=x", 1),
		"signature of another body":  SignEvent(key, at, append(body, ' ')),
		"signature by another party": SignEvent([]byte("other"), at, body),
	} {
		if err := VerifyEvent(key, header, body, at, 5*time.Minute); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, now := range map[string]time.Time{"late": at.Add(5*time.Minute + time.Second), "early": at.Add(-5*time.Minute - time.Second)} {
		if err := VerifyEvent(key, sig, body, now, 5*time.Minute); err == nil {
			t.Errorf("%s: accepted outside the window", name)
		}
	}
}

// Events waiting in the outbox when the daemon starts (an apply from CI
// charged an occurrence: charge.awaiting_customer, with its link) are
// sent before the first cycle has read the applied configuration. Their
// address must still be the occurrence's in the configured time zone, as
// every other event and the state give it.
func TestEventsAtStartUseConfiguredZone(t *testing.T) {
	hook := newWebhook(t, 0)
	e := newEnv(t, envOptions{hcl: bindingHCL + gymHCL, at: gymFirst.Add(time.Minute)})
	e.bindAlice()
	e.chargeGym() // as ddctl apply would
	// The first cycle waits for the state lock, as it would behind an
	// apply that holds it.
	e.start(daemonOptions{held: true, configure: func(c *Config) {
		c.EventURL, c.EventSecret = hook.srv.URL, secret.New("whsec-test")
	}})
	hook.waitEvent(t, state.EventChargeAwaitingCustomer)
	for _, d := range hook.deliveries() {
		var ev Event
		json.Unmarshal(d.body, &ev)
		if ev.Type == state.EventChargeAwaitingCustomer && ev.Address != gymOccurrence {
			t.Fatalf("charge.awaiting_customer sent at start with address %q, want %q (the configured zone, Asia/Jakarta)", ev.Address, gymOccurrence)
		}
	}
}

// monthlyGymHCL is a gym charge on the 1st of each month at 09:00 in
// Jakarta from start, with extra attributes and blocks (catch_up, retry).
func monthlyGymHCL(start, extra string) string {
	return fmt.Sprintf(`
recurring_charge "gym" {
  binding     = binding.alice
  amount      = 150000
  schedule    = "0 9 1 * *"
  start       = %q
  description = "Gym"
%s
}
`, start, extra)
}

// gymKey is the idempotency key of attempt n of the gym charge's
// occurrence at, as DOKU gets it: the ledger is checked against it rather
// than against what the state says it sent.
func (e *env) gymKey(at time.Time, n int) string {
	occ := spec.OccurrenceAddress("recurring_charge.gym", at, jakarta)
	return reconcile.IdempotencyKey(e.cfg.Settings.ReferencePrefix, "recurring_charge.gym", occ, n)
}

// ledgerPayments are the sandbox's payments by partnerReferenceNo.
func (e *env) ledgerPayments() map[string]sandbox.Payment {
	e.tb.Helper()
	out := map[string]sandbox.Payment{}
	for _, p := range e.sb.Ledger(e.tb).Payments {
		out[p.PartnerReferenceNo] = p
	}
	return out
}

// A daemon that starts long after several occurrences of a monthly charge
// were missed, with no attempt in the state, charges in its first (full)
// cycle what catch_up says: the latest missed occurrence (the default),
// every one ("all") or none ("none"); in each case the next wake is the
// coming occurrence, which a due cycle then charges. DOKU's ledger holds
// exactly those payments, under their first keys.
//
// After a failed attempt (the customer declined) of a charge with retry {
// attempts = 2, every = "1h" }, a daemon that was down past UpdatedAt+1h
// makes attempt 2 in its first cycle; one that starts before that makes
// nothing then, and wakes for it at UpdatedAt+1h exactly.
func TestCatchUpAfterDowntime(t *testing.T) {
	// Long enough that no periodic cycle comes before the next
	// occurrence: every wake is one the schedule asked for.
	const every = 60 * 24 * time.Hour
	monthly := func(y int, m time.Month) time.Time { return time.Date(y, m, 1, 9, 0, 0, 0, jakarta) }
	missed := []time.Time{monthly(2026, 9), monthly(2026, 10), monthly(2026, 11), monthly(2026, 12)}
	coming := monthly(2027, 1)
	up := time.Date(2026, 12, 15, 12, 0, 0, 0, jakarta) // the daemon starts

	for _, tc := range []struct {
		name, catchUp string
		want          []time.Time // the occurrences charged at start
	}{
		{"LatestByDefault", "", missed[len(missed)-1:]},
		{"Latest", `  catch_up = "latest"`, missed[len(missed)-1:]},
		{"All", `  catch_up = "all"`, missed},
		{"None", `  catch_up = "none"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{at: up, hcl: bindingHCL + monthlyGymHCL("2026-09-01", tc.catchUp)})
			e.bindAlice()
			step := newStepper()
			e.start(daemonOptions{step: step, configure: func(c *Config) { c.ReconcileEvery = every }})
			first := step.next(t, "at start")
			if first.Trigger != triggerFull || first.Err != nil || first.Actions != len(tc.want) || first.Succeeded != len(tc.want) {
				t.Fatalf("first cycle %+v, want a full one charging %d occurrences", first, len(tc.want))
			}
			if !first.Next.Equal(coming) {
				t.Errorf("next wake after the first cycle %s, want the coming occurrence %s", first.Next.In(jakarta), coming)
			}
			ledger := e.ledgerPayments()
			if len(ledger) != len(tc.want) {
				t.Errorf("ledger has %d payments, want %d: %+v", len(ledger), len(tc.want), ledger)
			}
			for _, at := range tc.want {
				p, ok := ledger[e.gymKey(at, 1)]
				if !ok || p.Amount != int64(gymAmount) || p.Status != doku.TxPending {
					t.Errorf("occurrence %s: ledger payment %+v (found %v), want one of %s awaiting the customer", at, p, ok, gymAmount)
				}
			}
			if got := e.sb.Calls(doku.OpPayment); got != int64(len(tc.want)) {
				t.Errorf("payment requests=%d, want %d", got, len(tc.want))
			}
			rows, err := e.store.Charges(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var charged []time.Time
			for _, r := range rows {
				if r.Attempt != 1 || r.Status != state.ChargeAwaitingCustomer {
					t.Errorf("state charge %+v, want attempt 1 awaiting the customer", r)
				}
				charged = append(charged, r.Occurrence)
			}
			slices.SortFunc(charged, time.Time.Compare)
			if !slices.EqualFunc(charged, tc.want, time.Time.Equal) {
				t.Errorf("state has attempts for %v, want %v", charged, tc.want)
			}

			// The coming occurrence, at its time, in a cycle of its own.
			step.advance(t, e.clock, first.Next)
			due := step.next(t, "at the coming occurrence")
			occ := spec.OccurrenceAddress("recurring_charge.gym", coming, jakarta)
			if due.Trigger != triggerDue || !slices.Equal(due.Targets, []string{occ}) || due.Actions != 1 || due.Succeeded != 1 {
				t.Fatalf("cycle at %s: %+v, want a due one charging %s", coming, due, occ)
			}
			if _, ok := e.ledgerPayments()[e.gymKey(coming, 1)]; !ok || e.sb.Calls(doku.OpPayment) != int64(len(tc.want)+1) {
				t.Errorf("after the coming occurrence: %d payment requests, its payment in the ledger: %v; want %d and true",
					e.sb.Calls(doku.OpPayment), ok, len(tc.want)+1)
			}
		})
	}

	// retried sets up a charge whose first attempt the customer declined,
	// which a plan (ddctl plan, or the daemon before it stopped) saw five
	// minutes after the occurrence; it returns when attempt 2 is allowed.
	retried := func(t *testing.T) (*env, time.Time) {
		t.Helper()
		e := newEnv(t, envOptions{at: gymFirst.Add(time.Minute), hcl: bindingHCL + monthlyGymHCL("2026-12-01", `
  retry {
    attempts = 2
    every    = "1h"
  }`)})
		e.bindAlice()
		c := e.chargeGym()
		if err := e.sb.Server.Confirm(context.Background(), path.Base(c.WebRedirectURL), false); err != nil {
			t.Fatal(err)
		}
		e.clock.Set(gymFirst.Add(5 * time.Minute))
		e.plan(gymOccurrence)
		failed := e.charge()
		if failed.Status != state.ChargeFailed || failed.Attempt != 1 {
			t.Fatalf("charge %+v after the customer declined, want attempt 1 failed", failed)
		}
		if got := e.sb.Calls(doku.OpPayment); got != 1 {
			t.Fatalf("payment requests=%d before the daemon, want 1", got)
		}
		return e, failed.UpdatedAt.Add(time.Hour)
	}
	// attempted2 checks that attempt 2 was made, once, not before retryAt.
	attempted2 := func(t *testing.T, e *env, retryAt time.Time) {
		t.Helper()
		if got := e.sb.Calls(doku.OpPayment); got != 2 {
			t.Errorf("payment requests=%d, want 2", got)
		}
		ledger := e.ledgerPayments()
		if p := ledger[e.gymKey(gymFirst, 1)]; p.Status != doku.TxFailed {
			t.Errorf("ledger: attempt 1 %+v, want failed", p)
		}
		if p, ok := ledger[e.gymKey(gymFirst, 2)]; !ok || p.Status != doku.TxPending {
			t.Errorf("ledger: attempt 2 %+v (found %v), want it awaiting the customer", p, ok)
		}
		rows, err := e.store.Charges(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[1].Attempt != 2 || rows[1].Status != state.ChargeAwaitingCustomer || rows[1].CreatedAt.Before(retryAt) {
			t.Errorf("state charges %+v, want attempt 2 awaiting the customer, made at %s or later", rows, retryAt)
		}
	}

	t.Run("RetryDownPastTheWait", func(t *testing.T) {
		e, retryAt := retried(t)
		e.clock.Set(retryAt.Add(2 * time.Hour)) // the daemon was down meanwhile
		step := newStepper()
		e.start(daemonOptions{step: step, configure: func(c *Config) { c.ReconcileEvery = every }})
		first := step.next(t, "at start")
		if first.Trigger != triggerFull || first.Actions != 1 || first.Succeeded != 1 {
			t.Fatalf("first cycle %+v, want a full one making attempt 2", first)
		}
		attempted2(t, e, retryAt)
	})

	t.Run("RetryUpBeforeTheWait", func(t *testing.T) {
		e, retryAt := retried(t)
		e.clock.Set(retryAt.Add(-30 * time.Minute))
		step := newStepper()
		e.start(daemonOptions{step: step, configure: func(c *Config) { c.ReconcileEvery = every }})
		first := step.next(t, "at start")
		if first.Trigger != triggerFull || first.Actions != 0 || first.Err != nil {
			t.Fatalf("first cycle %+v, want a full one making nothing: attempt 2 is not due yet", first)
		}
		if got := e.sb.Calls(doku.OpPayment); got != 1 {
			t.Fatalf("payment requests=%d before attempt 2 is due, want 1", got)
		}
		if !first.Next.Equal(retryAt) {
			t.Fatalf("next wake %s, want %s (the declined attempt's UpdatedAt + retry.every)", first.Next.In(jakarta), retryAt.In(jakarta))
		}
		step.advance(t, e.clock, first.Next)
		due := step.next(t, "at the retry")
		if due.Trigger != triggerDue || !slices.Equal(due.Targets, []string{gymOccurrence}) || due.Actions != 1 || due.Succeeded != 1 {
			t.Fatalf("cycle at the retry: %+v, want a due one making attempt 2 of %s", due, gymOccurrence)
		}
		attempted2(t, e, retryAt)
	})
}

// DOKU fails for one item only: the status inquiry about refund.a's
// payment gets HTTP 500 (the sandbox's faults are per operation, and
// refund.b's payment was asked about before, so only refund.a needs an
// inquiry). refund.b is refunded in the first cycle and never tried
// again; refund.a comes back in due cycles of its own, 5 s, 10 s, 20 s,
// 40 s … apart by the daemon's clock (±20%), and, once that exceeds the
// reconcile period, at most the period apart (a due cycle still comes, so
// it is the cap, not the periodic cycle, that keeps it). When DOKU
// answers, the backoff is forgotten: the next failure waits 5 s again,
// and once DOKU answers again the refund is made, in its own due cycle,
// and nothing more is scheduled for it.
func TestBackoffPerItem(t *testing.T) {
	const (
		every = 5 * time.Minute // the reconcile period: the cap
		// slack covers what runs between the test moving the daemon's
		// clock to a wake and the cycle reading the clock (the lock,
		// the inbox): milliseconds, and far below the step between two
		// waits' bounds.
		slack = 500 * time.Millisecond
	)
	// wait is the nominal wait after the n-th failure in a row, uncapped.
	wait := func(n int) time.Duration { return 5 * time.Second << min(n-1, 20) }
	within := func(gap, w time.Duration) bool { return gap >= w*8/10-slack && gap <= w*12/10+slack }

	e := newEnv(t, envOptions{hcl: `
refund "a" {
  payment = "INV-1"
  binding = binding.payer
  reason  = "test"
}

refund "b" {
  payment = "INV-2"
  binding = binding.payer
  reason  = "test"
}
`})
	e.sb.Pay(t, "INV-2", 2500000)
	// A plan run earlier (ddctl plan) asked DOKU about INV-2 and kept the
	// answer, which is final: refund.b needs no inquiry.
	e.plan("refund.b")
	asked := e.sb.Calls(doku.OpStatus) // that inquiry
	statusFails := sandbox.Faults{ErrorRate: 1, Ops: []string{doku.OpStatus.String()}}
	e.sb.Server.SetFaults(statusFails)
	step := newStepper()
	e.start(daemonOptions{step: step, configure: func(c *Config) { c.ReconcileEvery = every }})

	rep := step.next(t, "at start")
	at := e.clock.Now() // when that cycle ran, give or take its length
	if rep.Trigger != triggerFull || rep.Actions != 1 || rep.Succeeded != 1 {
		t.Fatalf("first cycle %+v, want a full one refunding refund.b", rep)
	}
	if got := e.sb.Calls(doku.OpStatus) - asked; got != 1 {
		t.Fatalf("first cycle: %d status inquiries, want 1 (about INV-1)", got)
	}
	if rf := e.sb.Ledger(t).Refunds; len(rf) != 1 || rf[0].PartnerReferenceNo != "INV-2" {
		t.Fatalf("ledger refunds %+v, want INV-2's", rf)
	}
	if gap := rep.Next.Sub(at); !within(gap, wait(1)) {
		t.Fatalf("after the first failure the next wake is %s on, want %s ±20%%", gap, wait(1))
	}
	// attempts counts refund.a's inquiries, one per cycle that planned it;
	// failures those in a row that failed.
	attempts, failures := 1, 1
	// next lets the daemon run its next cycle at the time it asked for and
	// checks what every cycle must: refund.b is not tried again, and a due
	// cycle is refund.a's alone.
	next := func(what string) (CycleReport, time.Duration) {
		t.Helper()
		wake, last := rep.Next, at
		step.advance(t, e.clock, wake)
		rep, at = step.next(t, what), wake
		switch {
		case rep.Err != nil:
			t.Fatalf("%s: cycle %+v", what, rep)
		case rep.Trigger == triggerDue && !slices.Equal(rep.Targets, []string{"refund.a"}):
			t.Fatalf("%s: due cycle targets %v, want only refund.a", what, rep.Targets)
		case rep.Trigger != triggerDue && rep.Trigger != triggerFull:
			t.Fatalf("%s: a %q cycle, want due or full", what, rep.Trigger)
		}
		attempts++
		if got := e.sb.Calls(doku.OpStatus) - asked; got != int64(attempts) {
			t.Fatalf("%s: %d status inquiries, want %d: one per cycle, about refund.a's payment only", what, got, attempts)
		}
		return rep, wake.Sub(last)
	}

	// The waits grow, each in a due cycle of refund.a's: the periodic
	// cycle is minutes away.
	for failures < 5 {
		what := fmt.Sprintf("retry %d", failures)
		rep, gap := next(what)
		if rep.Trigger != triggerDue || rep.Actions != 0 || e.sb.Calls(doku.OpRefund) != 1 {
			t.Fatalf("%s: cycle %+v, %d refund requests; want a due cycle making nothing (refund.b's request only)", what, rep, e.sb.Calls(doku.OpRefund))
		}
		if !within(gap, wait(failures)) {
			t.Fatalf("%s came %s after the one before, want %s ±20%%", what, gap, wait(failures))
		}
		failures++
	}

	// Past the period, the wait is the period: periodic cycles come in
	// between, and the due cycle of refund.a still comes when its capped
	// wait is shorter than the periodic one's (half the time, by the
	// jitters) and much shorter than its uncapped wait.
	for {
		if failures > 60 {
			t.Fatalf("after %d failures refund.a was never retried by a due cycle at the capped wait (%s ±20%%)", failures, every)
		}
		what := fmt.Sprintf("retry %d", failures)
		rep, gap := next(what)
		w := min(wait(failures), every)
		if rep.Actions != 0 || e.sb.Calls(doku.OpRefund) != 1 {
			t.Fatalf("%s: cycle %+v, %d refund requests; want nothing made", what, rep, e.sb.Calls(doku.OpRefund))
		}
		if rep.Trigger == triggerFull && gap > w*12/10+slack {
			t.Fatalf("%s: the periodic cycle came %s after the last try; refund.a was due within %s ±20%%", what, gap, w)
		}
		if rep.Trigger == triggerDue && !within(gap, w) {
			t.Fatalf("%s came %s after the one before, want %s ±20%% (after %d failures; uncapped %s)", what, gap, w, failures, wait(failures))
		}
		failures++
		if rep.Trigger == triggerDue && wait(failures-1) >= 2*every {
			break
		}
	}

	// DOKU answers: INV-1 is unknown to it. An answer, not a failure:
	// nothing is due for refund.a any more.
	e.sb.Server.SetFaults(sandbox.Faults{})
	if rep, _ := next("DOKU answering"); rep.Actions != 0 {
		t.Fatalf("cycle %+v, want nothing made: DOKU knows no INV-1", rep)
	}
	// DOKU fails again; the payment exists by now. The backoff starts
	// over.
	e.sb.Server.SetFaults(statusFails)
	e.sb.Pay(t, "INV-1", 5000000)
	if rep, _ := next("after the answer"); rep.Trigger != triggerFull || rep.Actions != 0 {
		t.Fatalf("cycle %+v, want the periodic one (no wake was left for refund.a), making nothing", rep)
	}
	if gap := rep.Next.Sub(at); !within(gap, wait(1)) {
		t.Fatalf("after a failure following DOKU's answer the next wake is %s on, want %s ±20%%: the earlier failures must be forgotten", gap, wait(1))
	}
	// DOKU answers again: the refund is made at its retry.
	e.sb.Server.SetFaults(sandbox.Faults{})
	if rep, _ := next("the retry"); rep.Trigger != triggerDue || rep.Actions != 1 || rep.Succeeded != 1 {
		t.Fatalf("cycle %+v, want a due one refunding refund.a", rep)
	}
	byPayment := map[string]int{}
	for _, rf := range e.sb.Ledger(t).Refunds {
		byPayment[rf.PartnerReferenceNo]++
	}
	if want := map[string]int{"INV-1": 1, "INV-2": 1}; !maps.Equal(byPayment, want) || e.sb.Calls(doku.OpRefund) != 2 {
		t.Fatalf("ledger refunds by payment %v, %d refund requests; want %v and 2", byPayment, e.sb.Calls(doku.OpRefund), want)
	}
	// Nothing is due for it any more: the next cycle is the periodic one,
	// and it asks DOKU nothing.
	step.advance(t, e.clock, rep.Next)
	if rep := step.next(t, "after the refund"); rep.Trigger != triggerFull || rep.Actions != 0 || e.sb.Calls(doku.OpStatus)-asked != int64(attempts) {
		t.Fatalf("cycle %+v, %d status inquiries; want the periodic one, asking nothing more (%d)", rep, e.sb.Calls(doku.OpStatus)-asked, attempts)
	}
	t.Logf("%d inquiries about INV-1; a due retry at the capped wait came after %d failures in a row", attempts, failures-1)
}

// TestDaemonStopsWhenTheStateIsRestored: a state restored under a running
// daemon (its lease lapsed, say, while its machine was paused) must not be
// written as the state the daemon opened: the next cycle finds it
// restored, and the daemon stops, saying so, instead of acting on it.
func TestDaemonStopsWhenTheStateIsRestored(t *testing.T) {
	e := newEnv(t, envOptions{hcl: bindingHCL, at: gymFirst})
	backup := filepath.Join(t.TempDir(), "backup.db")
	other := e.openStore()
	if _, err := other.Serial(context.Background()); err != nil {
		t.Fatal(err)
	}
	step := newStepper()
	r := e.start(daemonOptions{step: step})
	step.next(t, "at start")
	// A copy of the state, put back by state restore while the daemon runs.
	if err := copyStateFile(e.path, backup); err != nil {
		t.Fatal(err)
	}
	restored, _, err := state.Restore(context.Background(), e.path, backup, state.RestoreOptions{Now: e.clock.Now(), Open: state.OpenOptions{AllowPlaintextSecrets: true}})
	if err != nil {
		t.Fatal(err)
	}
	restored.Close()
	step.advance(t, e.clock, e.clock.Now().Add(time.Hour))
	if rep := step.next(t, "the cycle after the restore"); !errors.Is(rep.Err, state.ErrStateReplaced) {
		t.Fatalf("cycle after the restore: %+v, want it refused", rep)
	}
	step.advance(t, e.clock, e.clock.Now())
	err = r.wait(t)
	if !errors.Is(err, state.ErrStateReplaced) || !strings.Contains(err.Error(), "restored") {
		t.Fatalf("Run returned %v, want it to stop on a restored state", err)
	}
}

// copyStateFile copies the SQLite state at from, consistently, to to.
func copyStateFile(from, to string) error {
	db, err := sql.Open("sqlite3", "file:"+state.EscapePath(from)+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(`VACUUM INTO ?`, to)
	return err
}

// A "paid" notification on a bearer token alone (token-only mode, as an
// attacker holding a token sends it) for a charge DOKU still has awaiting
// its customer (03): the daemon asks DOKU, and the state follows DOKU. The
// charge stays awaiting, no charge.succeeded event is sent; once the
// customer really pays, the next cycle's inquiry finds it.
func TestUnsignedPaidFollowsDOKU(t *testing.T) {
	e := newEnv(t, envOptions{hcl: bindingHCL + gymHCL, at: gymFirst.Add(time.Minute)})
	e.bindAlice()
	c := e.chargeGym()
	tokenOnly, err := doku.NewReceiver(doku.ReceiverConfig{
		ClientID:      e.sb.Config.ClientID,
		DOKUPublicKey: &e.sb.Config.DOKUPrivateKey.PublicKey,
		SigningKey:    e.merchantKey(),
		Mode:          doku.ModeTokenOnly,
		NowFunc:       e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.start(daemonOptions{configure: func(cfg *Config) { cfg.Parts.Receiver = tokenOnly }})
	r.cycles.wait(t, 0, "at start", func(CycleReport) bool { return true })
	n := e.notifier(r.url)
	n.Mode = doku.ModeTokenOnly
	token, err := n.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	statuses := e.sb.Calls(doku.OpStatus)
	req, err := n.Request(context.Background(), token, "unsigned-1", e.notification(c, doku.TxSuccess))
	if err != nil {
		t.Fatal(err)
	}
	from := r.cycles.len()
	if status, code := send(t, &http.Client{}, req); status != http.StatusOK {
		t.Fatalf("notification: HTTP %d %s, want 200 (recorded, then checked)", status, code)
	}
	r.cycles.wait(t, from, "processing the notification", func(c CycleReport) bool { return c.Notifications > 0 })
	if got := e.charge(); got.Status != state.ChargeAwaitingCustomer {
		t.Fatalf("charge %s after an unsigned \"paid\" DOKU has as 03; want %s", got.Status, state.ChargeAwaitingCustomer)
	}
	if got := e.sb.Calls(doku.OpStatus) - statuses; got < 1 {
		t.Fatalf("%d status inquiries, want the notification confirmed by one", got)
	}
	if k := e.countEvents(state.EventChargeSucceeded); k != 0 {
		t.Fatalf("%d charge.succeeded events, want 0", k)
	}
}

// SNAP makes X-EXTERNAL-ID unique per day: another notification under an
// X-EXTERNAL-ID used today is refused with 409 and counted, not silently
// dropped as a duplicate; a resend of the first stays a duplicate.
func TestNotificationExternalIDConflict(t *testing.T) {
	s := newNotifying(t)
	s.r.hold()
	defer s.r.release()
	client := &http.Client{}
	if status, code := send(t, client, s.request("id-1", s.body)); status != http.StatusOK {
		t.Fatalf("first: HTTP %d %s", status, code)
	}
	other := s.notification(s.attempt, doku.TxFailed)
	if status, code := send(t, client, s.request("id-1", other)); status != http.StatusConflict || code != string(doku.CodeNotifyConflict) {
		t.Fatalf("another notification under id-1: HTTP %d %s, want 409 %s", status, code, doku.CodeNotifyConflict)
	}
	if status, code := send(t, client, s.request("id-1", s.body)); status != http.StatusOK || code != string(doku.CodeNotifyAck) {
		t.Fatalf("the first again: HTTP %d %s, want 200 (a duplicate)", status, code)
	}
	text := s.r.scrape(t)
	for result, want := range map[string]float64{"accepted": 1, "conflict": 1, "duplicate": 1} {
		if got, _ := metric(text, "ddctl_notifications_total", "result", result); got != want {
			t.Errorf(`ddctl_notifications_total{result=%q}=%v, want %v`, result, got, want)
		}
	}
}

// A notification without a token the daemon issued is refused before its
// body is read: a body that never ends does not hold the answer.
func TestNotificationRefusedBeforeBody(t *testing.T) {
	s := newNotifying(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"originalPartnerReferenceNo":`)) // and nothing more
	req, err := http.NewRequest(http.MethodPost, s.r.url+NotificationPath, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a hang, not a speed
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("no answer while the body was still coming: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("HTTP %d, want 401", resp.StatusCode)
	}
}

// An event goes to the event URL and nowhere else: a receiver answering
// with a redirect does not get the event (signature and all) re-posted
// to the redirect's target; the delivery counts as failed and is retried.
// An event URL over plain http to another machine is refused at start.
func TestEventsNoRedirect(t *testing.T) {
	target := newWebhook(t, 0)
	var redirects atomic.Int64
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		http.Redirect(w, r, target.srv.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	e := newEnv(t, envOptions{hcl: bindingHCL})
	e.bindAlice() // binding.active: an event to send
	spy, seen := newStoreSpy()
	e.start(daemonOptions{daemon: spy, configure: func(c *Config) {
		c.EventURL, c.EventSecret = redirector.URL, secret.New("whsec-test")
	}})
	waitSeen(t, seen, "failed")
	if redirects.Load() == 0 {
		t.Fatal("the receiver was never posted to")
	}
	if got := target.deliveries(); len(got) != 0 {
		t.Fatalf("the redirect's target received %d posts: %+v", len(got), got)
	}

	e2 := newEnv(t, envOptions{hcl: bindingHCL})
	_, err := New(Config{Store: e2.store, Parts: Parts{Engine: e2.engine, Receiver: e2.receiver(e2.clock.Now),
		LoadSpecFunc: func([]byte) (*spec.Config, error) { return e2.cfg, nil }},
		LockFunc: func(context.Context) (func(), error) { return func() {}, nil }, Listener: listen(t),
		EventURL: "http://events.example.com/hook", EventSecret: secret.New("whsec-test")})
	if err == nil || !strings.Contains(err.Error(), "want https") {
		t.Fatalf("New with an http event URL to another machine: %v, want a refusal", err)
	}
}

// The token endpoint mints at most a burst of tokenBurst, then one per
// tokenEvery: a captured DOKU signature, good for X-TIMESTAMP's window,
// does not mint tokens at will. The refusal is SNAP's 429.
func TestTokenEndpointRateLimited(t *testing.T) {
	s := newNotifying(t) // one token taken
	ok, refused := 1, 0
	for range 2 * tokenBurst {
		if _, err := s.n.Token(context.Background()); err == nil {
			ok++
		} else if strings.Contains(err.Error(), string(doku.CodeTokenTooMany)) {
			refused++
		} else {
			t.Fatalf("token: %v", err)
		}
	}
	if ok != tokenBurst || refused != tokenBurst+1 {
		t.Fatalf("%d tokens issued, %d refused; want %d and %d", ok, refused, tokenBurst, tokenBurst+1)
	}
	s.clock.Advance(tokenEvery)
	if _, err := s.n.Token(context.Background()); err != nil {
		t.Fatalf("a token after %v: %v", tokenEvery, err)
	}
}
