package doku_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/secret"
)

// merchant is a merchant's notification side: the token endpoint DOKU
// calls, and the notification endpoint, verified by a doku.Receiver.
type merchant struct {
	srv      *httptest.Server
	mu       sync.Mutex
	receiver *doku.Receiver
	got      []*doku.Notification
	refused  int
	down     int // answer 503 to this many notifications first
}

func newMerchant(t *testing.T) *merchant {
	m := &merchant{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+doku.PathTokenB2B, func(w http.ResponseWriter, r *http.Request) { m.receiver.ServeToken(w, r) })
	mux.HandleFunc("POST /notifications/doku", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, err := m.receiver.Verify(r, body)
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.down > 0 {
			m.down--
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			m.refused++
			http.Error(w, "refused", http.StatusUnauthorized)
			return
		}
		m.got = append(m.got, n)
		doku.Ack(w)
	})
	m.srv = httptest.NewServer(mux)
	t.Cleanup(m.srv.Close)
	return m
}

// The customer opens the payment page, enters OTP and PIN, and confirms:
// the browser goes back to the merchant, the payment succeeds, and the
// merchant receives a notification it can verify.
func TestConfirmationPageAndNotification(t *testing.T) {
	m := newMerchant(t)
	sb := sandboxtest.New(t, func(c *sandbox.Config) { c.NotifyURL = m.srv.URL + "/notifications/doku" })
	merchantKey, err := doku.LoadPrivateKey(filepath.Join(sb.Dir, "merchant.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// Both on their defaults: the sandbox signs as the Receiver checks.
	m.receiver, err = doku.NewReceiver(doku.ReceiverConfig{ClientID: sb.Config.ClientID, ClientSecret: sb.Config.ClientSecret,
		DOKUPublicKey: &sb.Config.DOKUPrivateKey.PublicKey, SigningKey: merchantKey, NowFunc: sb.Server.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := sb.Client(t)
	ctx := context.Background()
	raw, _ := json.Marshal("100000")
	sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: phone, Balance: raw})
	b, err := c.BindAccount(ctx, bindingReq("cust-1"), doku.RequestOptions{DeviceID: "device1"})
	if err != nil {
		t.Fatal(err)
	}
	sb.Server.Confirm(ctx, confirmationID(b.RedirectURL), true)
	const ref = "DDCTLPAY0000000000000000000000PAGE"
	p, err := c.Pay(ctx, paymentReq(ref, "25000.00"), doku.RequestOptions{AuthCode: secret.New(b.AdditionalInfo.AuthCode)})
	if err != nil {
		t.Fatal(err)
	}

	// The page, as the customer's browser gets it.
	resp, err := http.Get(p.WebRedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindSubmatch(page)
	if resp.StatusCode != 200 || action == nil || !regexp.MustCompile(`IDR 25,000\.00`).Match(page) ||
		!regexp.MustCompile(`name="otp"`).Match(page) || !regexp.MustCompile(`name="pin"`).Match(page) {
		t.Fatalf("confirmation page: HTTP %d\n%s", resp.StatusCode, page)
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"otp": {"123456"}, "pin": {"654321"}, "action": {"approve"}}
	resp, err = browser.PostForm(sb.URL+string(action[1]), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://shop.example.test/pay/ok" {
		t.Fatalf("form answer HTTP %d to %q, want 303 to the success URL", resp.StatusCode, resp.Header.Get("Location"))
	}
	st, err := c.PaymentStatus(ctx, doku.StatusRequest{OriginalPartnerReferenceNo: ref}, doku.RequestOptions{})
	if err != nil || st.LatestTransactionStatus != doku.TxSuccess {
		t.Fatalf("status after confirming: %+v %v", st, err)
	}

	// Deliver now rather than wait for the background tick.
	if err := sb.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.got) != 1 || m.refused != 0 {
		t.Fatalf("merchant got %d notifications, refused %d; want 1 and 0", len(m.got), m.refused)
	}
	n := m.got[0]
	if n.OriginalPartnerReferenceNo != ref || n.LatestTransactionStatus != doku.TxSuccess || n.Amount.Value != "25000.00" || n.ExternalID == "" {
		t.Fatalf("notification %+v", n)
	}
}

// A wrong OTP format re-shows the page with an error and changes nothing.
func TestConfirmationPageRefusesBadOTP(t *testing.T) {
	sb := sandboxtest.New(t)
	c := sb.Client(t)
	ctx := context.Background()
	raw, _ := json.Marshal("100000")
	sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: phone, Balance: raw})
	b, err := c.BindAccount(ctx, bindingReq("cust-1"), doku.RequestOptions{DeviceID: "device1"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(b.RedirectURL, url.Values{"otp": {"12"}, "pin": {"654321"}, "action": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !regexp.MustCompile(`id="error"`).Match(page) {
		t.Fatalf("bad OTP: HTTP %d\n%s", resp.StatusCode, page)
	}
	if got := sb.Ledger(t).Bindings[0].Status; got != sandbox.BindingPending {
		t.Fatalf("binding %s after a bad OTP, want pending", got)
	}
}

// notifyingSandbox is a sandbox that notifies m, with a bound customer and
// one pending payment; it returns the payment's confirmation ID.
func notifyingSandbox(t *testing.T, m *merchant) (*sandboxtest.Env, string) {
	t.Helper()
	sb := sandboxtest.New(t, func(c *sandbox.Config) { c.NotifyURL = m.srv.URL + "/notifications/doku" })
	merchantKey, _ := doku.LoadPrivateKey(filepath.Join(sb.Dir, "merchant.pem"))
	var err error
	m.receiver, err = doku.NewReceiver(doku.ReceiverConfig{ClientID: sb.Config.ClientID, ClientSecret: sb.Config.ClientSecret,
		DOKUPublicKey: &sb.Config.DOKUPrivateKey.PublicKey, SigningKey: merchantKey, NowFunc: sb.Server.Now, MaxSkew: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := sb.Client(t)
	ctx := context.Background()
	raw, _ := json.Marshal("100000")
	sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: phone, Balance: raw})
	b, err := c.BindAccount(ctx, bindingReq("cust-1"), doku.RequestOptions{DeviceID: "device1"})
	if err != nil {
		t.Fatal(err)
	}
	sb.Server.Confirm(ctx, confirmationID(b.RedirectURL), true)
	p, err := c.Pay(ctx, paymentReq("DDCTLPAY0000000000000000000NOTIFY1", "1000.00"), doku.RequestOptions{AuthCode: secret.New(b.AdditionalInfo.AuthCode)})
	if err != nil {
		t.Fatal(err)
	}
	return sb, confirmationID(p.WebRedirectURL)
}

// A merchant that does not answer 2xx is tried again on DOKU's schedule,
// scaled down: 30 minutes becomes 5 seconds.
func TestNotificationRetried(t *testing.T) {
	m := newMerchant(t)
	sb, conf := notifyingSandbox(t, m)
	ctx := context.Background()
	m.mu.Lock()
	m.down = 1
	m.mu.Unlock()
	if err := sb.Server.Confirm(ctx, conf, true); err != nil {
		t.Fatal(err)
	}
	sb.Server.Tick(ctx)
	count := func() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.got) }
	if n := count(); n != 0 {
		t.Fatalf("delivered %d while the merchant was down", n)
	}
	sb.Server.Advance(ctx, 4*time.Second)
	if n := count(); n != 0 {
		t.Fatalf("retried before its time: %d", n)
	}
	sb.Server.Advance(ctx, 2*time.Second)
	if n := count(); n != 1 {
		t.Fatalf("after the first retry time: %d notifications, want 1", n)
	}
}

// Duplicate notifications carry the same X-EXTERNAL-ID and event key, so
// the merchant can drop the second.
func TestNotificationDuplicated(t *testing.T) {
	m := newMerchant(t)
	sb, conf := notifyingSandbox(t, m)
	ctx := context.Background()
	sb.Server.SetFaults(sandbox.Faults{NotifyDuplicateRate: 1})
	if err := sb.Server.Confirm(ctx, conf, false); err != nil {
		t.Fatal(err)
	}
	sb.Server.Tick(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.got) != 2 || m.got[0].ExternalID != m.got[1].ExternalID || m.got[0].DedupKey() != m.got[1].DedupKey() ||
		m.got[0].LatestTransactionStatus != doku.TxFailed {
		t.Fatalf("got %d notifications: %+v", len(m.got), m.got)
	}
}
