package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/spec"
)

// A saved plan is a contract: a refund added to a real, reviewed plan file
// (as whoever can write the CI artifact would add it) is refused at apply
// before any call, and so is the plan made unsigned; the plan as saved
// applies. The plan file holds no full phone number.
func TestEditedPlanFileRefused(t *testing.T) {
	sb := startSandbox(t)
	sb.pay(t, "INV-1", 150000)
	sb.pay(t, "INV-6666", 999000)
	dir := writeConfig(t, sb, "refund \"one\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\n")
	env := []string{"DDCTL_STATE_KEY=" + strings.Repeat("ab", 32)}
	adoptPayer(t, sb, dir, env)
	planFile := filepath.Join(t.TempDir(), "reviewed.plan")
	if out, errOut, code := runDDCTLEnv(t, dir, env, "plan", "-out="+planFile); code != 0 {
		t.Fatalf("plan -out: exit %d\n%s\n%s", code, out, errOut)
	}
	saved, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(saved), `"signature":"hmac-sha256:`) {
		t.Fatalf("the saved plan is not signed:\n%s", saved)
	}
	before := sb.calls(t)["refund"]

	injected := strings.Replace(string(saved), `"actions": [`,
		`"actions": [{"kind":"refund","address":"refund.injected","payment":"INV-6666","amount":99900000,"idempotency_key":"INJECTED-1"},`, 1)
	unsigned := regexp.MustCompile(`"signature":"hmac-sha256:[0-9a-f]+"`).ReplaceAllString(injected, `"signature":""`)
	for name, body := range map[string]string{"a refund injected": injected, "the signature dropped": unsigned} {
		if body == string(saved) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		edited := filepath.Join(t.TempDir(), "edited.plan")
		if err := os.WriteFile(edited, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := runDDCTLEnv(t, dir, env, "apply", edited)
		if code == 0 || !strings.Contains(errOut, "Nothing was sent") {
			t.Errorf("%s: apply exit %d, stderr %q; want a refusal saying nothing was sent", name, code, errOut)
		}
		if got := sb.calls(t)["refund"]; got != before {
			t.Errorf("%s: %d refund calls after the refused apply, want %d", name, got, before)
		}
		t.Logf("%s: %s", name, strings.TrimSpace(errOut))
	}
	if out, errOut, code := runDDCTLEnv(t, dir, env, "apply", planFile); code != 0 {
		t.Fatalf("the plan as saved: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, r := range sb.ledger(t).Refunds {
		if r.PartnerReferenceNo == "INV-6666" {
			t.Errorf("INV-6666 was refunded: %+v", r)
		}
	}
	if got := sb.calls(t)["refund"]; got != before+1 {
		t.Errorf("%d refund calls after the saved plan, want %d", got, before+1)
	}
}

// A pull request's configuration cannot send credentials or customers'
// authCodes to a host of its choosing: a production doku block naming a
// listener on the CI runner, or a sandbox block naming another remote
// host, is refused at load, and the listener receives nothing. The
// runner's own DDCTL_DOKU_BASE_URL must be https.
func TestBaseURLExfiltrationRefused(t *testing.T) {
	sb := startSandbox(t)
	var mu sync.Mutex
	var got []string
	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer listener.Close()
	c := sb.creds
	for _, tc := range []struct {
		name, environment, baseURL string
		env                        []string
		want                       string
	}{
		{"production to a local listener", "production", listener.URL, nil, "base_url not allowed here"},
		{"production to a look-alike host", "production", "https://api.doku.com.example.net", nil, "base_url not allowed here"},
		{"sandbox to a remote host", "sandbox", "https://sandbox.example.net", nil, "base_url not allowed here"},
		{"the runner's override over http", "production", "", []string{"DDCTL_DOKU_BASE_URL=" + listener.URL}, "DDCTL_DOKU_BASE_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "config")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			block := fmt.Sprintf("doku {\n  environment = %q\n  client_id = %q\n  client_secret = %q\n  private_key_file = %q\n  doku_public_key_file = %q\n",
				tc.environment, c.ClientID, c.ClientSecret, c.MerchantPrivateKeyFile, c.DOKUPublicKeyFile)
			if tc.baseURL != "" {
				block += fmt.Sprintf("  base_url = %q\n", tc.baseURL)
			}
			main := "binding \"alice\" {\n  customer_id = \"cust-1\"\n  phone = \"6281234567890\"\n  success_url = \"https://example.com/ok\"\n  failed_url = \"https://example.com/no\"\n}\nrefund \"r\" {\n  payment = \"INV-1\"\n  binding = binding.alice\n}\n"
			for name, body := range map[string]string{"doku.hcl": block + "}\n", "main.hcl": main} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := append([]string{"DDCTL_STATE_KEY=" + strings.Repeat("cd", 32)}, tc.env...)
			_, errOut, code := runDDCTLEnv(t, dir, env, "plan")
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("plan: exit %d, stderr %q; want a refusal naming %q", code, errOut, tc.want)
			}
			t.Logf("%s", strings.TrimSpace(errOut))
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Fatalf("the listener received %d requests: %q", len(got), got)
	}
}

// A pull request's plan runs with no customer secret (plan -review, and
// no state key in the job): it asks DOKU for no customer token and no
// balance, shows every call (a charge its customer's balance would defer
// is shown with a note that the balance was not asked), and cannot be
// saved or applied.
func TestReviewPlanReadsNoCustomerSecret(t *testing.T) {
	s := newScenario(t, "REVIEW")
	at := recentMinute()
	s.customer(alicePhone, 10000) // IDR 10,000.00: a real plan defers the charge
	s.write("main.hcl", aliceBinding+dailyCharge("gym", at, 150000, ""))
	s.bind()
	tokens, balances := s.sb.Calls(doku.OpTokenB2B2C), s.sb.Calls(doku.OpBalance)

	out, errOut, code := s.run("plan", "-review", "-detailed-exitcode")
	if code != 2 {
		t.Fatalf("plan -review: exit %d, want 2 (changes)\n%s\n%s", code, out, errOut)
	}
	occ := "recurring_charge.gym#" + at.Format(spec.OccurrenceLayout)
	if !strings.Contains(out, occ) || !strings.Contains(out, "balance of 1 charge was not asked") || !strings.Contains(out, "cannot be saved or applied") {
		t.Errorf("plan -review does not show the charge and what it did not check:\n%s", out)
	}
	if got := s.sb.Calls(doku.OpTokenB2B2C) - tokens; got != 0 {
		t.Errorf("%d customer-token exchanges during plan -review, want 0", got)
	}
	if got := s.sb.Calls(doku.OpBalance) - balances; got != 0 {
		t.Errorf("%d balance inquiries during plan -review, want 0", got)
	}
	if _, errOut, code := s.run("plan", "-review", "-out="+filepath.Join(t.TempDir(), "p")); code == 0 || !strings.Contains(errOut, "cannot be saved") {
		t.Errorf("plan -review -out: exit %d, stderr %q; want a refusal", code, errOut)
	}
	// The same plan with the customer's secrets asks, and defers.
	if out, _, _ := s.run("plan"); !strings.Contains(out, "insufficient balance") {
		t.Errorf("plan with the customer's secrets does not defer the charge:\n%s", out)
	}
	if s.sb.Calls(doku.OpBalance) == balances {
		t.Error("the plan with the customer's secrets asked no balance: the test shows nothing")
	}
}

// The CI flow with no key in the pull request's job: the job shows
// plan -review (-json kept for the merge); the merge plans with the keys,
// -expect'ing the reviewed plan, and saves and applies it only if it makes
// no call the review did not show. A configuration changed after review
// is refused, with nothing saved or sent.
func TestPlanExpectReviewed(t *testing.T) {
	s := newScenario(t, "EXPECT")
	s.sb.Pay(t, "INV-1", 1500000)
	s.sb.Pay(t, "INV-2", 2500000)
	s.write("main.hcl", "refund \"one\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\n")
	adoptPayer(t, s.sb, s.dir, nil)
	review, merged := filepath.Join(t.TempDir(), "review.json"), filepath.Join(t.TempDir(), "merge.plan")
	out, errOut, code := s.run("plan", "-review", "-json")
	if code != 0 {
		t.Fatalf("plan -review -json: exit %d\n%s", code, errOut)
	}
	if err := os.WriteFile(review, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}

	// Merged with another change nobody reviewed with it: refused.
	s.write("main.hcl", "refund \"one\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\nrefund \"two\" {\n  payment = \"INV-2\"\n  binding = binding.payer\n}\n")
	if _, errOut, code := s.run("plan", "-expect="+review, "-out="+merged); code == 0 || !strings.Contains(errOut, "not the one the reviewed plan was made from") {
		t.Fatalf("plan -expect after an unreviewed change: exit %d, stderr %q; want a refusal", code, errOut)
	}
	if _, err := os.Stat(merged); !os.IsNotExist(err) {
		t.Fatalf("a plan was saved: %v", err)
	}

	// As reviewed: saved, applied, one refund.
	s.write("main.hcl", "refund \"one\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\n")
	if out, errOut, code := s.run("plan", "-expect="+review, "-out="+merged); code != 0 || !strings.Contains(out, "Every call of this plan was in the reviewed plan") {
		t.Fatalf("plan -expect as reviewed: exit %d\n%s\n%s", code, out, errOut)
	}
	s.apply(merged)
	if got := s.sb.Calls(doku.OpRefund); got != 1 {
		t.Fatalf("%d refund calls, want 1", got)
	}
}
