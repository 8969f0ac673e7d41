package spec

import (
	"fmt"
	"strings"
	"testing"
)

// TestLoadSensitiveNotRevealed makes configurations fail in many ways with
// a sensitive value involved, and checks that neither the diagnostics, as
// cmd renders them, nor a printed Config contain the value.
func TestLoadSensitiveNotRevealed(t *testing.T) {
	const secretValue = "sk-live-7f3a9c"
	const decl = `
variable "secret" {
  sensitive = true
}
`
	tests := []struct {
		name, src string
		wantErr   bool
	}{
		{"Reason", `refund "a" {
  payment = "INV-1"
  reason  = var.secret
}`, true},
		{"Payment", `refund "a" { payment = "INV-${var.secret}" }`, true},
		{"AmountToNumber", `refund "a" {
  payment = "INV-1"
  amount  = tonumber(var.secret)
}`, true},
		{"FormatDate", `refund "a" { payment = formatdate("YYYY", var.secret) }`, true},
		{"TimeAdd", `refund "a" { payment = timeadd(var.secret, "1h") }`, true},
		{"Lookup", `refund "a" { payment = lookup({}, var.secret) }`, true},
		{"JSONDecode", `refund "a" { payment = jsondecode(var.secret) }`, true},
		{"File", `refund "a" { payment = file(var.secret) }`, true},
		{"ParseInt", `refund "a" { payment = parseint(var.secret, 10) }`, true},
		{"Regex", `refund "a" { payment = regex("^x", var.secret) }`, true},
		{"ForEachSet", `refund "a" {
  for_each = toset([var.secret])
  payment  = each.key
}`, true},
		{"EachValueObject", `refund "a" {
  for_each = { k = { ref = "INV-1", s = var.secret } }
  payment  = each.value.ref
  reason   = each.value.missing
}`, true},
		{"Index", `refund "a" { payment = { a = "INV-1" }[var.secret] }`, true},
		{"Arithmetic", `refund "a" {
  payment = "INV-1"
  amount  = var.secret + 1
}`, true},
		{"Condition", `refund "a" { payment = var.secret ? "a" : "b" }`, true},
		{"ClientSecretIsFine", `refund "a" { payment = "INV-1" }`, false},
		{"BindingPhone", `binding "b" {
  customer_id = "c1"
  phone       = var.secret
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/failed"
}`, true},
		{"BindingKey", `binding "b" {
  for_each    = toset(["k"])
  customer_id = "c1"
  phone       = "628123456789"
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/failed"
}

recurring_charge "c" {
  binding  = binding.b[var.secret]
  amount   = 1000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}`, true},
		{"ChargeSchedule", `binding "b" {
  customer_id = "c1"
  phone       = "628123456789"
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/failed"
}

recurring_charge "c" {
  binding  = binding.b
  amount   = 1000
  schedule = var.secret
  start    = "2026-12-01"
}`, true},
		{"RefundOccurrence", `refund "a" { payment = "recurring_charge.c#${var.secret}" }`, true},
		{"Local", `locals {
  x = "${var.secret}!"
}

refund "a" {
  payment = "INV-1"
  reason  = upper(local.x)
}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, files, diags := loadMain(t, decl+tt.src, nil, []string{"DDCTL_VAR_secret=" + secretValue})
			if diags.HasErrors() != tt.wantErr {
				t.Errorf("errors=%v, want %v:\n%s", diags.HasErrors(), tt.wantErr, renderDiags(t, files, diags))
			}
			if text := renderDiags(t, files, diags); strings.Contains(text, secretValue) {
				t.Errorf("diagnostics reveal the secret:\n%s", text)
			}
			if cfg != nil {
				if s := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg); strings.Contains(s, secretValue) {
					t.Errorf("printed Config reveals the secret: %s", s)
				}
			}
		})
	}
}

func TestLoadClientSecret(t *testing.T) {
	const src = `
variable "secret" {
  sensitive = true
}

doku {
  environment      = "production"
  client_id        = "C-1"
  client_secret    = "${var.secret}-suffix"
  private_key_file = "/keys/merchant.pem"
}
`
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.hcl": src})
	cfg := mustLoad(t, LoadOptions{Dir: dir, Vars: []string{"secret=sk-prod"}})
	if got := cfg.DOKU.ClientSecret.Reveal(); got != "sk-prod-suffix" {
		t.Errorf("ClientSecret=%q, want sk-prod-suffix", got)
	}
	if got := cfg.DOKU.BaseURL; got != defaultProductionBaseURL {
		t.Errorf("BaseURL=%q, want %q", got, defaultProductionBaseURL)
	}
	if got := cfg.DOKU.PrivateKeyFile; got != "/keys/merchant.pem" {
		t.Errorf("PrivateKeyFile=%q, want the absolute path unchanged", got)
	}
	if got := cfg.Settings.Location.String(); got != defaultTimezone {
		t.Errorf("Location=%s, want the default %s", got, defaultTimezone)
	}
}
