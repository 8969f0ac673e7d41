// Package sandboxtest starts a sandbox for a test: a real sandbox.Server
// with a real SQLite ledger in a temporary directory, served over real HTTP
// by httptest, in the shape of net/http/httptest.
package sandboxtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/money"
)

// Env is a running sandbox.
type Env struct {
	Server *sandbox.Server
	HTTP   *httptest.Server
	URL    string
	Dir    string // the sandbox directory: keys, credentials.json, doku.hcl
	Config sandbox.Config
}

// keys are generated once per test binary: RSA generation is the slowest
// part of starting a sandbox, and tests need no fresh keys.
var keys = sync.OnceValues(func() ([2][]byte, error) {
	var out [2][]byte
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return out, err
		}
		if out[i], err = doku.EncodePrivateKey(k); err != nil {
			return out, err
		}
	}
	return out, nil
})

// New starts a sandbox in tb's temporary directory and stops it at the end
// of the test. configure, if given, adjusts the sandbox's Config.
func New(tb testing.TB, configure ...func(*sandbox.Config)) *Env {
	tb.Helper()
	dir := tb.TempDir()
	WriteKeys(tb, dir)
	cfg, err := sandbox.PrepareDir(dir)
	if err != nil {
		tb.Fatalf("prepare sandbox: %v", err)
	}
	for _, f := range configure {
		f(&cfg)
	}
	srv, err := sandbox.Open(cfg)
	if err != nil {
		tb.Fatalf("open sandbox: %v", err)
	}
	hs := httptest.NewServer(srv)
	tb.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	if err := sandbox.WriteClientFiles(dir, hs.URL, cfg); err != nil {
		tb.Fatalf("write sandbox client files: %v", err)
	}
	return &Env{Server: srv, HTTP: hs, URL: hs.URL, Dir: dir, Config: cfg}
}

// WriteKeys puts the test binary's shared key pairs into a sandbox
// directory, so that sandbox.PrepareDir does not generate new ones.
func WriteKeys(tb testing.TB, dir string) {
	tb.Helper()
	k, err := keys()
	if err != nil {
		tb.Fatalf("generate keys: %v", err)
	}
	for i, name := range []string{"merchant", "doku"} {
		pk, err := doku.ParsePrivateKey(k[i])
		if err != nil {
			tb.Fatal(err)
		}
		pub, err := doku.EncodePublicKey(&pk.PublicKey)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".pub.pem"), pub, 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".pem"), k[i], 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// ClientConfig is a doku.Config for this sandbox, as a merchant would have.
func (e *Env) ClientConfig(tb testing.TB) doku.Config {
	tb.Helper()
	key, err := doku.LoadPrivateKey(filepath.Join(e.Dir, "merchant.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	return doku.Config{
		BaseURL:      e.URL,
		ClientID:     e.Config.ClientID,
		ClientSecret: e.Config.ClientSecret,
		PrivateKey:   key,
		IPAddress:    "10.20.30.40",
	}
}

// Client is a doku.Client for this sandbox.
func (e *Env) Client(tb testing.TB) *doku.Client {
	tb.Helper()
	c, err := doku.NewClient(e.ClientConfig(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Pay creates a paid payment in the ledger.
func (e *Env) Pay(tb testing.TB, partnerRef string, amount money.Amount) sandbox.Payment {
	tb.Helper()
	raw, _ := json.Marshal(amount.Value())
	p, err := e.Server.CreatePayment(context.Background(), sandbox.NewPayment{
		PartnerReferenceNo: partnerRef, Amount: raw, Phone: PayerPhone,
	})
	if err != nil {
		tb.Fatalf("create payment %s: %v", partnerRef, err)
	}
	return p
}

// PayerPhone and PayerCustomerID are the customer whose payments Pay
// makes.
const (
	PayerPhone      = "6281299990001"
	PayerCustomerID = "payer-1"
)

// PayerAuthCode binds the account that Pay's payments come from, as a
// merchant's own systems would have (active at once), and returns the
// binding's authCode: a refund of those payments carries its customer
// token.
func (e *Env) PayerAuthCode(tb testing.TB) string {
	tb.Helper()
	code, err := e.Server.BindOutside(context.Background(), PayerPhone, PayerCustomerID)
	if err != nil {
		tb.Fatalf("bind the payer: %v", err)
	}
	return code
}

// Calls is the sandbox's count of calls to op so far.
func (e *Env) Calls(op doku.Op) int64 { return e.Server.Stats().Calls[op.String()] }

// Ledger is everything the sandbox holds.
func (e *Env) Ledger(tb testing.TB) sandbox.Ledger {
	tb.Helper()
	l, err := e.Server.Ledger(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// Post sends a raw request to the sandbox (for tests of its checks).
func (e *Env) Post(tb testing.TB, path string, h http.Header, body []byte) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}

// WriteDOKUBlock writes a doku block for this sandbox to path, with
// absolute key file paths, so that a configuration directory anywhere can
// use it. Its settle_time is 0s: the tests apply again at once after an
// unknown outcome, as ddctl did before it had a settle time, and must
// converge without waiting a minute; the settle time has tests of its own
// (reconcile's TestSettleTime).
func (e *Env) WriteDOKUBlock(tb testing.TB, path string) {
	tb.Helper()
	hcl := fmt.Sprintf(`doku {
  environment          = "sandbox"
  base_url             = %q
  client_id            = %q
  client_secret        = %q
  private_key_file     = %q
  doku_public_key_file = %q
  settle_time          = "0s"
}
`, e.URL, e.Config.ClientID, e.Config.ClientSecret.Reveal(),
		filepath.Join(e.Dir, "merchant.pem"), filepath.Join(e.Dir, "doku.pub.pem"))
	if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
		tb.Fatal(err)
	}
}
