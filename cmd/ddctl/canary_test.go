package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/daemon"
	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

// TestSecretCanaries runs ddctl with known secret values, production-like
// (a state key, the client secret in a sensitive variable, debug logs on
// every command), through the whole life of a configuration: bind two
// customers, then plan (text, -json, markdown, -out), show the plan file,
// apply it (a charge, two refunds, an unbind), apply until converged,
// history, state list and state show, plans and applies that fail (DOKU
// answers 500, or drops the connection), a command with a wrong state key,
// and the daemon (notifications from the sandbox, its event hook, its
// health and metrics). Then it looks for each secret, in raw, base64,
// base64url, hex and URL-encoded form, in every stdout and stderr (the
// logs), the plan file, the daemon's HTTP answers and the events it
// posted, and the state file and its -wal, read while a process has them
// open (the test holds a connection, so that no close deletes the WAL, and
// copies both while the daemon runs). Any JWT (DOKU's access tokens and the
// daemon's are all JWTs) in an output counts as a leak too.
//
// The secrets: the client secret; the merchant private key (a line of its
// PEM body and the first digits of its private exponent); DDCTL_STATE_KEY
// (as set, and its bytes) and the wrong key; DDCTL_EVENT_SECRET; each
// binding's authCode and customer token, and the B2B token, read back from
// the state (decrypted with the key) whenever they may have changed. The
// customer's full phone number must not be in any output either (principle
// 5, docs/principles.md: masked in output); the saved plan and the state keep it,
// as they must to bind the customer (see phoneStored).
func TestSecretCanaries(t *testing.T) {
	start := time.Now()
	ctx := context.Background()
	addr := freeAddr(t)
	clientSecret := "cs-canary-" + randomHex(12)
	sb := sandboxtest.New(t, func(c *sandbox.Config) {
		c.AutoApprove = 5 * time.Millisecond
		c.ClientSecret = secret.New(clientSecret)
		c.NotifyURL = "http://" + addr + daemon.NotificationPath
	})
	alicePhone, bobPhone := "62857"+randomDigits(8), "62858"+randomDigits(8)
	for _, ph := range []string{alicePhone, bobPhone} {
		if _, err := sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: ph, Balance: []byte(`"10000000"`)}); err != nil {
			t.Fatal(err)
		}
	}
	sb.Pay(t, "CANARY-INV-1", 75000)
	sb.Pay(t, "CANARY-INV-2", 50000)
	stateKey, wrongKey, eventSecret := hexKey(), hexKey(), "ev-canary-"+randomHex(12)
	env := []string{"DDCTL_STATE_KEY=" + stateKey, "DDCTL_LOG=debug", "DDCTL_VAR_client_secret=" + clientSecret, "DDCTL_EVENT_SECRET=" + eventSecret}
	cipher := mustCipher(t, stateKey)

	dir := t.TempDir()
	writeHCL(t, dir, "doku.hcl", fmt.Sprintf(`variable "client_secret" {
  sensitive = true
}

doku {
  environment          = "sandbox"
  base_url             = %q
  client_id            = %q
  client_secret        = var.client_secret
  private_key_file     = %q
  doku_public_key_file = %q
  requests_per_second  = 1000
}
`, sb.URL, sb.Config.ClientID, filepath.Join(sb.Dir, "merchant.pem"), filepath.Join(sb.Dir, "doku.pub.pem")))
	bindings := fmt.Sprintf(`settings {
  reference_prefix = "CANARYZ"
}

binding "alice" {
  customer_id = "cust-alice"
  phone       = %q
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/fail"
}
`, alicePhone)
	bob := fmt.Sprintf(`
binding "bob" {
  customer_id = "cust-bob"
  phone       = %q
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/fail"
}
`, bobPhone)
	work := `
recurring_charge "gym" {
  binding     = binding.alice
  amount      = 150000
  schedule    = "0 9 1 1 *"
  start       = "2026-01-01"
  end         = "2026-01-02"
  description = "Gym membership"
}

refund "shop" {
  payment = "CANARY-INV-1"
  binding = binding.payer
  reason  = "damaged"
}

refund "gym_back" {
  payment = "recurring_charge.gym#2026-01-01T09:00+07:00"
}

unbind "bob" {
  customer_id = "cust-bob"
  reason      = "account closed"
}
`
	writeHCL(t, dir, "main.hcl", bindings+bob)

	var (
		procs []*ddctlProc
		files = map[string][]byte{} // what else is scanned, by what it is
		mu    sync.Mutex
	)
	run := func(wantCode int, extraEnv []string, args ...string) *ddctlProc {
		t.Helper()
		name := "ddctl " + strings.Join(args, " ")
		p := startDDCTL(t, name, append(slices.Clone(env), extraEnv...), append([]string{"-chdir=" + dir}, args...)...)
		if code := p.exitCode(t); wantCode >= 0 && code != wantCode {
			p.dump(t)
			t.Fatalf("%s exited %d, want %d", name, code, wantCode)
		}
		procs = append(procs, p)
		return p
	}
	// secrets holds every secret value seen so far, by value.
	secrets := map[string]string{}
	collect := func() {
		t.Helper()
		for v, name := range stateSecrets(t, statePath(dir), cipher, stateScope(t, dir, env...)) {
			if _, ok := secrets[v]; !ok {
				secrets[v] = fmt.Sprintf("%s (#%d)", name, len(secrets)+1)
			}
		}
		for _, b := range sb.Ledger(t).Bindings {
			if _, ok := secrets[b.AuthCode]; !ok && b.AuthCode != "" {
				secrets[b.AuthCode] = fmt.Sprintf("the authCode of the ledger's binding %d", b.ID)
			}
		}
	}
	applyUntilConverged := func(what string) {
		t.Helper()
		for range 30 {
			p := run(-1, nil, "apply", "-auto-approve")
			collect()
			lines, _, _ := p.stdout.snapshot()
			out := strings.Join(lines, "\n")
			if strings.Contains(out, "Nothing to do") && !strings.Contains(out, "Awaiting") && !strings.Contains(out, "Waiting") {
				return
			}
			time.Sleep(30 * time.Millisecond) // the sandbox approves on its next tick
		}
		t.Fatalf("%s: no convergence after 30 applies", what)
	}

	// The payments' payer, bound outside ddctl, is adopted first, as an
	// operator would (its authCode on ddctl import's stdin): the refunds
	// carry its customer token. Its authCode is a canary, and what the
	// import printed is scanned.
	payerAuthCode, importOutput := adoptPayer(t, sb, dir, env)
	files["what ddctl import binding.payer printed"] = []byte(importOutput)
	collect()

	// Bind alice and bob, through a saved plan.
	bindPlan := filepath.Join(dir, "bind.tfplan")
	run(0, nil, "plan", "-out="+bindPlan)
	b, err := os.ReadFile(bindPlan)
	if err != nil {
		t.Fatal(err)
	}
	files["the plan file of the bindings"] = b
	run(0, nil, "show", bindPlan)
	run(0, nil, "apply", bindPlan)
	collect()
	applyUntilConverged("binding")
	// From now on the test holds the state open, so that no process's
	// close checkpoints and deletes the WAL: it is scanned as it is.
	keep := openReadOnly(t, statePath(dir))
	defer keep.Close()
	if _, err := keep.Exec(`SELECT count(*) FROM meta`); err != nil {
		t.Fatal(err)
	}

	// Plans of the work, in every form, saved and shown, then applied.
	writeHCL(t, dir, "main.hcl", bindings+work)
	run(0, nil, "plan")
	run(0, nil, "plan", "-json")
	run(0, nil, "plan", "-format=markdown")
	run(2, nil, "plan", "-detailed-exitcode")
	planFile := filepath.Join(dir, "work.tfplan")
	run(0, nil, "plan", "-out="+planFile)
	b, err = os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	files["the plan file of the work"] = b
	run(0, nil, "show", planFile)
	run(0, nil, "show", "-json", planFile)
	run(-1, nil, "apply", planFile)
	collect()
	applyUntilConverged("the work")

	// What the state holds, as an operator reads it.
	run(0, nil, "history")
	run(0, nil, "history", "refund.shop")
	run(0, nil, "state", "list")
	for _, a := range []string{"binding.alice", "binding.bob", "unbind.bob", "refund.shop", "refund.gym_back", "recurring_charge.gym#2026-01-01T09:00+07:00"} {
		run(-1, nil, "state", "show", a)
	}

	// Failures: DOKU answers 500 to everything; then drops every refund
	// after making it; then all is well again.
	writeHCL(t, dir, "main.hcl", bindings+work+"\nrefund \"late\" {\n  payment = \"CANARY-INV-2\"\n  binding = binding.payer\n}\n")
	sb.Server.SetFaults(sandbox.Faults{ErrorRate: 1})
	run(1, nil, "plan")
	run(1, nil, "apply", "-auto-approve")
	sb.Server.SetFaults(sandbox.Faults{DropRate: 1, Ops: []string{"refund"}})
	run(1, nil, "apply", "-auto-approve")
	sb.Server.SetFaults(sandbox.Faults{})
	applyUntilConverged("after the faults")
	// A wrong state key: the secrets cannot be read, and nothing says them.
	run(-1, []string{"DDCTL_STATE_KEY=" + wrongKey}, "state", "show", "binding.alice")
	run(-1, []string{"DDCTL_STATE_KEY=" + wrongKey}, "plan")

	// The daemon: notifications from the sandbox, events to a receiver.
	var events [][]byte
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h bytes.Buffer
		r.Header.Write(&h)
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		events = append(events, append(h.Bytes(), body...))
		mu.Unlock()
	}))
	defer recv.Close()
	adminAddr := freeAddr(t)
	d := startDDCTL(t, "ddctl daemon", env, "-chdir="+dir, "daemon", "-listen="+addr, "-admin-listen="+adminAddr, "-event-url="+recv.URL, "-reconcile-every=1s")
	d.waitCycle(t, 0, nil)
	// CI applies a second charge while the daemon runs: the customer
	// approves, and the sandbox notifies the daemon, which applies it.
	writeHCL(t, dir, "main.hcl", bindings+work+"\nrefund \"late\" {\n  payment = \"CANARY-INV-2\"\n  binding = binding.payer\n}\n"+
		"\nrecurring_charge \"gym2\" {\n  binding = binding.alice\n  amount  = 1000\n  schedule = \"0 9 2 1 *\"\n  start = \"2026-01-02\"\n  end = \"2026-01-03\"\n}\n")
	applyUntilConverged("the second charge")
	d.waitLog(t, 0, "notification applied", nil)
	for _, url := range []string{"http://" + addr + "/healthz", "http://" + adminAddr + "/readyz", "http://" + adminAddr + "/metrics"} {
		path := url[strings.LastIndex(url, "/"):]
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		files["the daemon's GET "+path] = body
	}
	waitFor(t, "events posted by the daemon", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) >= 3 })
	// The state and its WAL, copied while the daemon has them open.
	for _, name := range []string{"ddctl.db", "ddctl.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			files[name+" (copied while the daemon ran)"] = b
		}
	}
	d.signal(t, syscall.SIGTERM)
	if code := d.exitCode(t); code != 0 {
		t.Errorf("the daemon exited %d after SIGTERM", code)
	}
	procs = append(procs, d)
	collect()
	mu.Lock()
	for i, e := range events {
		files[fmt.Sprintf("event %d posted by the daemon (headers and body)", i+1)] = e
	}
	mu.Unlock()
	for _, name := range []string{"ddctl.db", "ddctl.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v (the test holds the state open, so the WAL should be there)", name, err)
		}
		files[name] = b
	}

	// The canaries.
	pem, d0 := merchantKeyCanaries(t, filepath.Join(sb.Dir, "merchant.pem"))
	named := map[string]string{
		"the client secret":                  clientSecret,
		"a line of the merchant key's PEM":   pem,
		"the merchant key's exponent (hex)":  d0,
		"DDCTL_STATE_KEY":                    stateKey,
		"the wrong DDCTL_STATE_KEY":          wrongKey,
		"DDCTL_EVENT_SECRET":                 eventSecret,
		"alice's phone number":               alicePhone,
		"bob's phone number":                 bobPhone,
		"the payer's phone number":           sandboxtest.PayerPhone,
		"the payer's authCode (imported)":    payerAuthCode,
		"the state key's bytes (base64)":     base64.StdEncoding.EncodeToString(mustHex(t, stateKey)),
		"the state key's bytes (base64url)":  base64.RawURLEncoding.EncodeToString(mustHex(t, stateKey)),
		"the wrong key's bytes (base64)":     base64.StdEncoding.EncodeToString(mustHex(t, wrongKey)),
		"the state key's bytes (raw binary)": string(mustHex(t, stateKey)),
	}
	for v, name := range secrets {
		named[name] = v
		if strings.Contains(name, "authCode") {
			// What the token cache's names held before they were keyed:
			// enough to check a guessed authCode against the file.
			sum := sha256.Sum256([]byte(v))
			named["the SHA-256 of "+name] = hex.EncodeToString(sum[:])
		}
	}
	var tokens, codes int
	for name := range named {
		switch {
		case strings.Contains(name, "token"):
			tokens++
		case strings.Contains(name, "authCode"):
			codes++
		}
	}
	if tokens < 4 || codes < 3 {
		t.Fatalf("read back %d tokens and %d authCodes from the state and the ledger; want the B2B token, the three customers' tokens and authCodes (alice, bob and the payer)", tokens, codes)
	}
	forms := canaryForms(named)

	// The scan.
	var sc leakScan
	for _, p := range procs {
		for _, l := range []*lineLog{p.stdout, p.stderr} {
			lines, _, _ := l.snapshot()
			sc.text(t, l.name, lines, forms)
		}
	}
	for what, b := range files {
		// The state keeps phone numbers (DOKU needs them); a plan file
		// keeps them masked.
		sc.bytes(t, what, b, forms, strings.HasPrefix(what, "ddctl.db"))
	}
	t.Logf("secret canaries: %d secrets (%d tokens, %d authCodes read back from the state and ledger) in %d forms; "+
		"scanned %d output streams of %d commands (%d lines, %d bytes) and %d files and answers (%d bytes: two plan files, the state and its WAL twice, %d events, the daemon's health and metrics); %v",
		len(named), tokens, codes, len(forms), sc.streams, len(procs), sc.lines, sc.textBytes, len(files), sc.fileBytes, len(events), time.Since(start).Round(time.Millisecond))
	t.Logf("the secrets: %s", strings.Join(slices.Sorted(maps.Keys(named)), ", "))
	t.Logf("hits: %d in outputs, %d in files; JWTs anywhere: %d; the full phone number where it is kept by design: %s",
		sc.outputHits, sc.fileHits, sc.jwts, strings.Join(sc.stored, "; "))
}

// stateSecrets reads, with the key (nil: a sandbox state kept in the
// clear), the secrets the state at path keeps:
// each binding's authCode and customer token and every cached access
// token, by value.
func stateSecrets(tb testing.TB, path string, cipher *state.Cipher, scope string) map[string]string {
	tb.Helper()
	st, err := state.OpenWith(path, state.OpenOptions{Cipher: cipher, AllowPlaintextSecrets: cipher == nil, SecretScope: scope})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	out := map[string]string{}
	bindings, err := st.Bindings(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	for addr, b := range bindings {
		if !b.AuthCode.IsZero() {
			out[b.AuthCode.Reveal()] = addr + "'s authCode"
		}
		if !b.CustomerToken.IsZero() {
			out[b.CustomerToken.Reveal()] = addr + "'s customer token"
		}
	}
	tokens, err := st.CachedTokens(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	for name, tok := range tokens {
		out[tok.Reveal()] = fmt.Sprintf("DOKU's token cached in the state (%.12s…)", name)
	}
	return out
}

// merchantKeyCanaries are two pieces of the merchant's private key: a
// line from the middle of its PEM body, and the first 48 hex digits of its
// private exponent.
func merchantKeyCanaries(tb testing.TB, path string) (pemLine, exponent string) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 10 {
		tb.Fatalf("%s: %d lines, not a PEM private key", path, len(lines))
	}
	key, err := doku.ParsePrivateKey(b)
	if err != nil {
		tb.Fatal(err)
	}
	return lines[len(lines)/2], key.D.Text(16)[:48]
}

// canaryForms is each secret in the forms a leak could take: raw, base64
// (with and without padding), base64url, hex (both cases) and
// URL-encoded. The name says the secret and the form.
func canaryForms(named map[string]string) map[string]string {
	forms := map[string]string{}
	for name, v := range named {
		b := []byte(v)
		for form, s := range map[string]string{
			"raw":         v,
			"base64":      strings.TrimRight(base64.StdEncoding.EncodeToString(b), "="),
			"base64url":   base64.RawURLEncoding.EncodeToString(b),
			"hex":         hex.EncodeToString(b),
			"HEX":         strings.ToUpper(hex.EncodeToString(b)),
			"URL-encoded": url.QueryEscape(v),
			"path-escape": url.PathEscape(v),
		} {
			if form != "raw" && s == v {
				continue
			}
			forms[name+" ("+form+")"] = s
		}
	}
	return forms
}

// phoneStored says where a customer's full phone number is kept by
// design, and so not counted as a leak: the saved plan (a bind action
// carries the number the binding request sends) and the state (the
// binding's row, and the journalled binding request). Principle 5 asks
// that phone numbers be masked in output; these are ddctl's own files, created
// 0600.
func phoneStored(form string) bool { return strings.Contains(form, "phone number (raw)") }

// leakScan looks for canaries and counts what it scanned and found.
type leakScan struct {
	streams, lines, textBytes, fileBytes int
	outputHits, fileHits, jwts           int
	stored                               []string
}

// text scans one output stream: every canary form, and any JWT.
func (s *leakScan) text(tb testing.TB, name string, lines []string, forms map[string]string) {
	tb.Helper()
	s.streams++
	s.lines += len(lines)
	found := map[string]int{}
	for n, line := range lines {
		s.textBytes += len(line) + 1
		for form, v := range forms {
			if strings.Contains(line, v) {
				if found[form]++; found[form] == 1 {
					tb.Errorf("%s: line %d holds %s: %.200s", name, n+1, form, redact(line, forms))
				}
				s.outputHits++
			}
		}
		if jwtRe.MatchString(line) {
			s.jwts++
			tb.Errorf("%s: line %d holds a JWT (a bearer token): %.200s", name, n+1, redact(line, forms))
		}
	}
}

// bytes scans a file or an HTTP answer: every canary form, and any JWT
// (ddctl's own files hold none either: the tokens it keeps are
// encrypted). ddctlFile says it is one of ddctl's files, which may keep a
// phone number (phoneStored).
func (s *leakScan) bytes(tb testing.TB, what string, b []byte, forms map[string]string, ddctlFile bool) {
	tb.Helper()
	s.fileBytes += len(b)
	for form, v := range forms {
		n := bytes.Count(b, []byte(v))
		if n == 0 {
			continue
		}
		if ddctlFile && phoneStored(form) {
			s.stored = append(s.stored, fmt.Sprintf("%s ×%d in %s", form, n, what))
			continue
		}
		s.fileHits += n
		tb.Errorf("%s holds %s (%d times)", what, form, n)
	}
	if m := jwtRe.FindAll(b, -1); len(m) > 0 {
		s.jwts += len(m)
		tb.Errorf("%s holds %d JWTs (bearer tokens)", what, len(m))
	}
}

// redact replaces every canary in line by its name, so that a failure's
// message does not repeat the secret.
func redact(line string, forms map[string]string) string {
	for form, v := range forms {
		line = strings.ReplaceAll(line, v, "<"+form+">")
	}
	return jwtRe.ReplaceAllString(line, "<JWT>")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomDigits(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
