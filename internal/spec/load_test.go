package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/secret"
)

// writeFiles writes files (name → content, names may have directories)
// under dir.
func writeFiles(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// mustLoad loads opts and fails the test on any error diagnostic.
func mustLoad(tb testing.TB, opts LoadOptions) *Config {
	tb.Helper()
	cfg, files, diags := Load(opts)
	if diags.HasErrors() || cfg == nil {
		tb.Fatalf("Load: unexpected errors:\n%s", renderDiags(tb, files, diags))
	}
	return cfg
}

const happyMain = `
settings {
  timezone         = "Asia/Jakarta"
  state            = "state/ddctl.db"
  reference_prefix = "SHOP1"
}

variable "client_id" {
  type        = string
  description = "Client ID from the DOKU Back Office"
}

variable "client_secret" {
  sensitive = true
}

variable "batch_date" {
  default = "2026-11-30"
}

variable "rps" {
  type    = number
  default = 5
}
`

const happyRefunds = `
refund "order_1001" {
  payment    = "INV-1001"
  amount     = 50000
  reason     = "item damaged"
  not_before = "2026-12-05T02:00:00+07:00"
}

refund "order_1002" {
  payment  = "INV-1002"
  amount   = "150000.50"
  currency = "IDR"
}

refund "full" {
  payment = lower("INV-1003")
}

refund "batch" {
  for_each   = { for r in csvdecode(file("batch.csv")) : r.order_id => r }
  payment    = each.value.payment_ref
  amount     = each.value.amount
  reason     = "batch ${each.key}: ${each.value.reason}"
  not_before = var.batch_date
}
`

const happyCSV = `order_id,payment_ref,amount,reason
ORD-7,INV-2007,25000,late delivery
ORD-9,INV-2009,1000.5,wrong size
`

// The doku block is generated elsewhere and given as an extra file, so its
// relative key path is relative to that file, not to the configuration.
const happyDOKU = `
doku {
  environment          = "sandbox"
  base_url             = "http://127.0.0.1:8787/"
  client_id            = var.client_id
  client_secret        = var.client_secret
  private_key_file     = "keys/merchant.pem"
  doku_public_key_file = "/etc/ddctl/doku.pub.pem"
  requests_per_second  = var.rps
  refund_policy        = "partial"
  ip_address           = "192.168.10.20"
  settle_time          = "90s"
  retry_budget         = "0s"
}
`

// happyPath writes the happy-path configuration under a new temporary
// directory and returns the options that load it.
func happyPath(tb testing.TB) LoadOptions {
	tb.Helper()
	root := tb.TempDir()
	writeFiles(tb, root, map[string]string{
		"conf/main.hcl":          happyMain,
		"conf/refunds.hcl":       happyRefunds,
		"conf/batch.csv":         happyCSV,
		"conf/notes.txt":         "not configuration",
		"conf/sub/ignored.hcl":   "this is not parsed {",
		"generated/doku.hcl":     happyDOKU,
		"generated/keys/x.pem":   "",
		"conf/keys/merchant.pem": "",
	})
	return LoadOptions{
		Dir:        filepath.Join(root, "conf"),
		ExtraFiles: []string{filepath.Join(root, "generated", "doku.hcl")},
		Vars:       []string{"client_id=C-123", "client_secret=sk-test-var-1", "client_secret=sk-test-var-2"},
		Env: []string{
			"HOME=/root",
			"DDCTL_VAR_client_secret=sk-test-env",
			"DDCTL_VAR_rps=20",
		},
	}
}

func TestLoad(t *testing.T) {
	opts := happyPath(t)
	root := filepath.Dir(opts.Dir)
	cfg := mustLoad(t, opts)

	jakarta, err := time.LoadLocation("Asia/Jakarta")
	if err != nil {
		t.Fatal(err)
	}
	refundsFile := filepath.Join(opts.Dir, "refunds.hcl")
	header := func(line, endCol int) hcl.Range {
		return hcl.Range{
			Filename: refundsFile,
			Start:    hcl.Pos{Line: line, Column: 1},
			End:      hcl.Pos{Line: line, Column: endCol},
		}
	}
	batchRange := header(19, 15)
	want := &Config{
		Dir: opts.Dir,
		Settings: Settings{
			Timezone:        "Asia/Jakarta",
			Location:        jakarta,
			State:           filepath.Join(opts.Dir, "state", "ddctl.db"),
			ReferencePrefix: "SHOP1",
		},
		DOKU: DOKU{
			Environment:       "sandbox",
			BaseURL:           "http://127.0.0.1:8787",
			ClientID:          "C-123",
			ClientSecret:      secret.New("sk-test-var-2"), // the last -var wins over the environment
			PrivateKeyFile:    filepath.Join(root, "generated", "keys", "merchant.pem"),
			DOKUPublicKeyFile: "/etc/ddctl/doku.pub.pem",
			RequestsPerSecond: 20, // DDCTL_VAR_rps converted to the declared number type
			RefundPolicy:      "partial",
			IPAddress:         "192.168.10.20",
			SettleTime:        90 * time.Second,
			RetryBudget:       0, // explicitly none: not the default
			RetryWaitMax:      DefaultRetryWaitMax,
			DeclRange: hcl.Range{
				Filename: filepath.Join(root, "generated", "doku.hcl"),
				Start:    hcl.Pos{Line: 2, Column: 1},
				End:      hcl.Pos{Line: 2, Column: 5},
			},
		},
		Refunds: []Refund{
			{
				Address:   `refund.batch["ORD-7"]`,
				Name:      "batch",
				Key:       "ORD-7",
				Payment:   "INV-2007",
				Amount:    2500000,
				Reason:    "batch ORD-7: late delivery",
				NotBefore: time.Date(2026, 11, 30, 0, 0, 0, 0, jakarta),
				DeclRange: batchRange,
			},
			{
				Address:   `refund.batch["ORD-9"]`,
				Name:      "batch",
				Key:       "ORD-9",
				Payment:   "INV-2009",
				Amount:    100050,
				Reason:    "batch ORD-9: wrong size",
				NotBefore: time.Date(2026, 11, 30, 0, 0, 0, 0, jakarta),
				DeclRange: batchRange,
			},
			{
				Address:   "refund.full",
				Name:      "full",
				Payment:   "inv-1003",
				Amount:    0, // the full paid amount
				DeclRange: header(15, 14),
			},
			{
				Address:   "refund.order_1001",
				Name:      "order_1001",
				Payment:   "INV-1001",
				Amount:    5000000,
				Reason:    "item damaged",
				NotBefore: time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC),
				DeclRange: header(2, 20),
			},
			{
				Address:   "refund.order_1002",
				Name:      "order_1002",
				Payment:   "INV-1002",
				Amount:    15000050,
				DeclRange: header(9, 20),
			},
		},
	}
	// Byte offsets are not worth writing out by hand.
	ignoreByte := cmp.Transformer("LineColumn", func(p hcl.Pos) [2]int { return [2]int{p.Line, p.Column} })
	opt := cmp.Options{
		ignoreByte,
		cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
		cmp.Comparer(func(a, b secret.Value) bool { return a.Reveal() == b.Reveal() }),
		cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Digest" }, cmp.Ignore()),
	}
	if diff := cmp.Diff(want, cfg, opt); diff != "" {
		t.Errorf("Config mismatch (-want +got):\n%s", diff)
	}
	if cfg.Refunds[1].Amount != money.Amount(100050) || cfg.Refunds[1].Amount.Value() != "1000.50" {
		t.Errorf("Amount=%v, want IDR 1,000.50", cfg.Refunds[1].Amount)
	}
	if len(cfg.Digest) != 64 {
		t.Errorf("Digest=%q, want 64 hex digits", cfg.Digest)
	}
}

func TestLoadDigest(t *testing.T) {
	opts := happyPath(t)
	first := mustLoad(t, opts).Digest

	t.Run("Stable", func(t *testing.T) {
		if got := mustLoad(t, opts).Digest; got != first {
			t.Errorf("Digest=%s on the second load, want %s", got, first)
		}
	})

	t.Run("SameInAnotherDirectory", func(t *testing.T) {
		moved := happyPath(t) // same files, another temporary directory
		// The extra doku.hcl is outside the directory, so its key path is
		// absolute and would differ; keep it the same for this check.
		moved.ExtraFiles = opts.ExtraFiles
		if got := mustLoad(t, moved).Digest; got != first {
			t.Errorf("Digest=%s in another directory, want %s", got, first)
		}
	})

	changes := []struct {
		name string
		edit func(opts *LoadOptions)
	}{
		{"Amount", func(o *LoadOptions) {
			editFile(t, filepath.Join(o.Dir, "refunds.hcl"), `amount     = 50000`, `amount     = 50001`)
		}},
		{"CSVAmount", func(o *LoadOptions) {
			editFile(t, filepath.Join(o.Dir, "batch.csv"), `1000.5`, `1000.51`)
		}},
		{"NotBefore", func(o *LoadOptions) {
			o.Vars = append(o.Vars, "batch_date=2026-12-01")
		}},
	}
	for _, c := range changes {
		t.Run("Changes"+c.name, func(t *testing.T) {
			o := happyPath(t)
			o.ExtraFiles = opts.ExtraFiles
			c.edit(&o)
			if got := mustLoad(t, o).Digest; got == first {
				t.Errorf("Digest unchanged after changing %s", c.name)
			}
		})
	}
	// How DOKU is reached is not desired state: a rotated secret keeps a
	// reviewed plan applicable.
	t.Run("SameAfterSecretChange", func(t *testing.T) {
		o := happyPath(t)
		o.ExtraFiles = opts.ExtraFiles
		o.Vars = append(o.Vars, "client_secret=sk-test-other")
		if got := mustLoad(t, o).Digest; got != first {
			t.Errorf("Digest=%s after changing the secret, want %s", got, first)
		}
	})
}

// editFile replaces old (which must occur) with new in the file at path.
func editFile(tb testing.TB, path, old, new string) {
	tb.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if !strings.Contains(string(src), old) {
		tb.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(src), old, new, 1)), 0o600); err != nil {
		tb.Fatal(err)
	}
}
