package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
)

const importHCL = `
binding "alice" {
  customer_id = "cust-001"
  phone       = "6281234567890"
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/failed"
}
`

// TestImport adopts a binding made outside ddctl, its authCode on stdin:
// one customer-token exchange, nothing else; the binding is then up to
// date, and a mistyped, inactive or duplicate import records nothing.
func TestImport(t *testing.T) {
	ctx := context.Background()
	sb := sandboxtest.New(t)
	dir := t.TempDir()
	sb.WriteDOKUBlock(t, filepath.Join(dir, "doku.hcl"))
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(importHCL), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)

	// The merchant's own system bound two customers; only the first
	// confirmed.
	bindElsewhere := func(phone, custID string, confirm bool) string {
		t.Helper()
		raw, _ := json.Marshal("500000")
		if _, err := sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: phone, Balance: raw}); err != nil {
			t.Fatal(err)
		}
		b, err := sb.Client(t).BindAccount(ctx, doku.BindingRequest{PhoneNo: phone, AdditionalInfo: doku.BindingInfo{
			Channel: doku.Channel, CustIDMerchant: custID, SuccessRegistrationURL: "https://x.test/ok", FailedRegistrationURL: "https://x.test/f",
			DeviceModel: "phone", OSType: "android", ChannelID: "app"}}, doku.RequestOptions{DeviceID: "device1"})
		if err != nil {
			t.Fatal(err)
		}
		if confirm {
			if err := sb.Server.Confirm(ctx, path.Base(b.RedirectURL), true); err != nil {
				t.Fatal(err)
			}
		}
		return b.AdditionalInfo.AuthCode
	}
	active := bindElsewhere("6281234567890", "cust-001", true)
	pending := bindElsewhere("6289876543210", "cust-002", false)

	ddctl := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
		if strings.Contains(out.String()+errb.String(), active) {
			t.Fatalf("ddctl %v printed the authCode", args)
		}
		return code, out.String(), errb.String()
	}
	exchanges := func() int64 { return sb.Calls(doku.OpTokenB2B2C) }

	for _, tc := range []struct {
		name, stdin string
		args        []string
		wantErr     string
	}{
		{"no block", active, []string{"import", "binding.alcie", "cust-001"}, `the configuration has no binding.alcie. Did you mean "binding.alice"?`},
		{"other customer", active, []string{"import", "binding.alice", "cust-002"}, `binding.alice is customer "cust-001"`},
		{"empty stdin", "", []string{"import", "binding.alice", "cust-001"}, "no authCode"},
		{"not a binding", active, []string{"import", "refund.x", "cust-001"}, "only bindings can be imported"},
		{"not confirmed", pending, []string{"import", "binding.alice", "cust-001"}, "the binding is not active"},
	} {
		code, _, stderr := ddctl(tc.stdin, tc.args...)
		if code == exitOK || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("%s: exit %d, stderr %q; want an error containing %q", tc.name, code, stderr, tc.wantErr)
		}
	}
	if n := exchanges(); n != 1 {
		t.Fatalf("%d customer-token exchanges before a good import, want 1 (the unconfirmed one)", n)
	}

	code, stdout, stderr := ddctl(active+"\n", "import", "binding.alice", "cust-001")
	if code != exitOK || !strings.Contains(stdout, `Imported binding.alice (customer "cust-001", phone 6281****7890): active.`) {
		t.Fatalf("import: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if n := exchanges(); n != 2 {
		t.Fatalf("%d customer-token exchanges after the import, want 2", n)
	}
	if code, _, stderr := ddctl(active, "import", "binding.alice", "cust-001"); code == exitOK || !strings.Contains(stderr, "the state already has binding.alice (active)") {
		t.Fatalf("second import: exit %d, stderr %s", code, stderr)
	}

	// Imported, the binding is up to date: no call of any kind.
	calls := sb.Server.Stats().Calls
	code, stdout, stderr = ddctl("", "plan")
	if code != exitOK || !strings.Contains(stdout, "No changes.") || !strings.Contains(stdout, "1 up to date") {
		t.Fatalf("plan after import: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for op, n := range sb.Server.Stats().Calls {
		if n != calls[op] {
			t.Errorf("plan after the import called %s (%d -> %d)", op, calls[op], n)
		}
	}
	code, stdout, _ = ddctl("", "history", "binding.alice")
	if code != exitOK || !strings.Contains(stdout, "import  succeeded") {
		t.Fatalf("history: %s", stdout)
	}
}
