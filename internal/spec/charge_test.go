package spec

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/ddctl/ddctl/internal/money"
)

// allBlocks uses every block kind: settings, doku (minimalDOKU), variable,
// locals, binding, unbind, recurring_charge and refund, with for_each on
// the kinds that take it.
const allBlocks = `
settings {
  timezone = "Asia/Jakarta"
}

variable "gym_amount" {
  type    = number
  default = 150000
}

locals {
  team   = { alice = "6281234567890", carol = "6281234567899" }
  ok_url = "https://shop.example/bind/ok"
}

locals {
  fail_url = replace(local.ok_url, "/ok", "/failed")
}

binding "dave" {
  customer_id = "cust-004"
  phone       = "628111222333"
  success_url = local.ok_url
  failed_url  = local.fail_url
}

binding "team" {
  for_each      = local.team
  customer_id   = "team-${each.key}"
  phone         = each.value
  success_url   = local.ok_url
  failed_url    = local.fail_url
  customer_name = title(each.key)
  email         = "${each.key}@example.com"
  device_model  = "Pixel 8"
  os_type       = "ios"
  channel_id    = "app"
}

unbind "bob" {
  customer_id = "cust-002"
  reason      = "account closed, ticket 8812"
}

unbind "old" {
  for_each    = toset(["cust-007", "cust-008"])
  customer_id = each.key
}

recurring_charge "gym" {
  binding     = binding.dave
  amount      = var.gym_amount
  schedule    = "0 9 1 * *"
  start       = "2026-12-01"
  end         = "2027-11-30"
  description = "Gym membership"
  catch_up    = "all"
  retry {
    attempts = 3
    every    = "24h"
  }
}

recurring_charge "team" {
  for_each = local.team
  binding  = binding.team[each.key]
  amount   = "99000.50"
  currency = "IDR"
  schedule = "30 8 * * 1"
  start    = "2026-12-07T08:30:00+07:00"
}

refund "gym_dec" {
  payment = "recurring_charge.gym#2026-12-01T09:00+07:00"
  amount  = 50000
  reason  = "pro rata"
}

refund "team_carol" {
  payment = "recurring_charge.team[\"carol\"]#2026-12-14T01:30Z"
}

refund "order" {
  payment = "INV-1"
}
`

func TestLoadAllBlocks(t *testing.T) {
	cfg, files, diags := loadMain(t, allBlocks, nil, nil)
	if cfg == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	if len(diags) != 0 {
		t.Errorf("unexpected warnings:\n%s", renderDiags(t, files, diags))
	}
	jakarta := cfg.Settings.Location
	// header is the DeclRange of block `kind "name"` in allBlocks.
	header := func(kind, name string) hcl.Range {
		decl := kind + ` "` + name + `"`
		for i, line := range strings.Split(allBlocks, "\n") {
			if strings.HasPrefix(line, decl+" {") {
				return hcl.Range{
					Filename: filepath.Join(cfg.Dir, "main.hcl"),
					Start:    hcl.Pos{Line: i + 1, Column: 1},
					End:      hcl.Pos{Line: i + 1, Column: len(decl) + 1},
				}
			}
		}
		t.Fatalf("no %s in allBlocks", decl)
		return hcl.Range{}
	}
	teamBinding := func(key, phone string) Binding {
		return Binding{
			Address: `binding.team["` + key + `"]`, Name: "team", Key: key,
			CustomerID: "team-" + key, Phone: phone,
			SuccessURL: "https://shop.example/bind/ok", FailedURL: "https://shop.example/bind/failed",
			CustomerName: strings.ToUpper(key[:1]) + key[1:], Email: key + "@example.com",
			DeviceModel: "Pixel 8", OSType: "ios", ChannelID: "app", DeclRange: header("binding", "team"),
		}
	}
	teamCharge := func(key string) Charge {
		return Charge{
			Address: `recurring_charge.team["` + key + `"]`, Name: "team", Key: key,
			Binding: `binding.team["` + key + `"]`, Amount: 9900050, Schedule: "30 8 * * 1",
			Start:   time.Date(2026, 12, 7, 8, 30, 0, 0, time.FixedZone("", 7*3600)),
			CatchUp: CatchUpLatest, CatchUpGrace: DefaultCatchUpGrace, Retry: Retry{Attempts: 1}, DeclRange: header("recurring_charge", "team"),
		}
	}
	type parts struct {
		Bindings []Binding
		Unbinds  []Unbind
		Charges  []Charge
		Refunds  []Refund
	}
	want := parts{
		Bindings: []Binding{
			{
				Address: "binding.dave", Name: "dave", CustomerID: "cust-004", Phone: "628111222333",
				SuccessURL: "https://shop.example/bind/ok", FailedURL: "https://shop.example/bind/failed",
				DeviceModel: "ddctl", OSType: "android", ChannelID: "web", DeclRange: header("binding", "dave"),
			},
			teamBinding("alice", "6281234567890"),
			teamBinding("carol", "6281234567899"),
		},
		Unbinds: []Unbind{
			{Address: "unbind.bob", Name: "bob", CustomerID: "cust-002", Reason: "account closed, ticket 8812", DeclRange: header("unbind", "bob")},
			{Address: `unbind.old["cust-007"]`, Name: "old", Key: "cust-007", CustomerID: "cust-007", DeclRange: header("unbind", "old")},
			{Address: `unbind.old["cust-008"]`, Name: "old", Key: "cust-008", CustomerID: "cust-008", DeclRange: header("unbind", "old")},
		},
		Charges: []Charge{
			{
				Address: "recurring_charge.gym", Name: "gym", Binding: "binding.dave", Amount: 15000000,
				Schedule: "0 9 1 * *",
				Start:    time.Date(2026, 12, 1, 0, 0, 0, 0, jakarta), End: time.Date(2027, 11, 30, 0, 0, 0, 0, jakarta),
				Description: "Gym membership", CatchUp: CatchUpAll, CatchUpGrace: DefaultCatchUpGrace, Retry: Retry{Attempts: 3, Every: 24 * time.Hour},
				DeclRange: header("recurring_charge", "gym"),
			},
			teamCharge("alice"),
			teamCharge("carol"),
		},
		Refunds: []Refund{
			{
				Address: "refund.gym_dec", Name: "gym_dec", Amount: 5000000, Reason: "pro rata",
				Charge: "recurring_charge.gym", Occurrence: time.Date(2026, 12, 1, 9, 0, 0, 0, jakarta),
				DeclRange: header("refund", "gym_dec"),
			},
			{Address: "refund.order", Name: "order", Payment: "INV-1", DeclRange: header("refund", "order")},
			{
				Address: "refund.team_carol", Name: "team_carol",
				Charge: `recurring_charge.team["carol"]`, Occurrence: time.Date(2026, 12, 14, 8, 30, 0, 0, jakarta),
				DeclRange: header("refund", "team_carol"),
			},
		},
	}
	got := parts{Bindings: cfg.Bindings, Unbinds: cfg.Unbinds, Charges: cfg.Charges, Refunds: cfg.Refunds}
	opt := cmp.Options{
		cmp.Transformer("LineColumn", func(p hcl.Pos) [2]int { return [2]int{p.Line, p.Column} }),
		cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
		cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
	}
	if diff := cmp.Diff(want, got, opt); diff != "" {
		t.Errorf("Config mismatch (-want +got):\n%s", diff)
	}
	if loc := cfg.Refunds[2].Occurrence.Location(); loc.String() != "Asia/Jakarta" {
		t.Errorf("Occurrence location=%v, want Asia/Jakarta", loc)
	}
}

func TestLoadAllBlocksDigest(t *testing.T) {
	first, files, diags := loadMain(t, allBlocks, nil, nil)
	if first == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	edits := []struct{ name, old, new string }{
		{"Phone", `"628111222333"`, `"628111222334"`},
		{"DeviceModel", `"Pixel 8"`, `"Pixel 9"`},
		{"UnbindReason", `ticket 8812`, `ticket 8813`},
		{"Schedule", `"0 9 1 * *"`, `"0 9 1,15 * *"`},
		{"End", `"2027-11-30"`, `"2027-12-31"`},
		{"CatchUp", `"all"`, `"none"`},
		{"RetryEvery", `"24h"`, `"12h"`},
		{"ChargeBinding", `binding.dave`, `binding.team["alice"]`},
		{"RefundOccurrence", `2026-12-14T01:30Z`, `2026-12-21T01:30Z`},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			if !strings.Contains(allBlocks, e.old) {
				t.Fatalf("allBlocks has no %q", e.old)
			}
			cfg, files, diags := loadMain(t, strings.Replace(allBlocks, e.old, e.new, 1), nil, nil)
			if cfg == nil {
				t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
			}
			if cfg.Digest == first.Digest {
				t.Errorf("Digest unchanged after changing %s", e.name)
			}
		})
	}
	// The same instant written with another offset is the same desired state.
	cfg, files, diags := loadMain(t, strings.Replace(allBlocks, `2026-12-14T01:30Z`, `2026-12-14T08:30+07:00`, 1), nil, nil)
	if cfg == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	if cfg.Digest != first.Digest {
		t.Errorf("Digest changed with the same occurrence written in another offset")
	}
}

func TestCatchUpString(t *testing.T) {
	for _, c := range []CatchUp{CatchUpAll, CatchUpLatest, CatchUpNone} {
		if c.String() != string(c) {
			t.Errorf("String()=%q, want %q", c.String(), string(c))
		}
	}
}

func TestLoadChargeDefaults(t *testing.T) {
	const src = `
binding "a" {
  customer_id = "c1"
  phone       = "628123456789"
  success_url = "http://127.0.0.1:8787/ok"
  failed_url  = "http://127.0.0.1:8787/failed"
}

recurring_charge "c" {
  binding  = (binding.a)
  amount   = 1000
  schedule = "@monthly"
  start    = "2026-01-01T00:00:00Z"
}
`
	cfg, files, diags := loadMain(t, src, nil, nil)
	if cfg == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	c := cfg.Charges[0]
	if c.CatchUp != CatchUpLatest || c.Retry != (Retry{Attempts: 1}) || !c.End.IsZero() || c.Description != "" || c.Binding != "binding.a" {
		t.Errorf("Charge=%+v, want the defaults", c)
	}
	if c.Amount != money.Amount(100000) {
		t.Errorf("Amount=%v, want IDR 1,000.00", c.Amount)
	}
}

// TestLoadReferenceSuggestions checks the "did you mean" of references and
// names that are close to a declared one.
func TestLoadReferenceSuggestions(t *testing.T) {
	const decls = `
variable "client_id" {
  default = "x"
}

locals {
  ok_url = "https://shop.example/ok"
}

binding "alice" {
  customer_id = "c1"
  phone       = "628123456789"
  success_url = local.ok_url
  failed_url  = local.ok_url
}

binding "team" {
  for_each    = toset(["bob", "carol"])
  customer_id = each.key
  phone       = "628123456789"
  success_url = local.ok_url
  failed_url  = local.ok_url
}

unbind "dave" {
  customer_id = "c9"
}
`
	charge := func(binding string) string {
		return `
recurring_charge "c" {
  binding  = ` + binding + `
  amount   = 1000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}
`
	}
	tests := []struct {
		name, src, summary, detail string
	}{
		{"Variable", `refund "r" { payment = var.client_di }`, "Reference to undeclared input variable", `Did you mean "client_id"?`},
		{"Local", `refund "r" { payment = local.ok_ulr }`, "Reference to undeclared local value", `Did you mean "ok_url"?`},
		{"Binding", charge("binding.alcie"), "Reference to undeclared binding", `Did you mean "alice"?`},
		{"BindingKey", charge(`binding.team["crol"]`), "Reference to undeclared binding", `Did you mean "carol"?`},
		{"UnbindIsNotABinding", charge("binding.dave"), "Reference to undeclared binding", "unbind.dave removes a binding"},
		{"MissingKey", charge("binding.team"), "Invalid binding reference", `binding.team["KEY"]`},
		{"ExtraKey", charge(`binding.alice["x"]`), "Invalid binding reference", "takes no key"},
		{"NotAReference", charge(`"binding.alice"`), "Invalid binding reference", "binding.alice"},
		{"Attribute", charge(`binding.alice.phone`), "Invalid binding reference", "is not a binding"},
		{"BindingAttribute", `binding "x" {
  customer_id = "c2"
  phon        = "628123456789"
  success_url = local.ok_url
  failed_url  = local.ok_url
}`, "Unsupported argument", `Did you mean "phone"?`},
		{"BlockType", `recuring_charge "c" {}`, "Unsupported block type", `Did you mean "recurring_charge"?`},
		{"Occurrence", `recurring_charge "gym" {
  binding  = binding.alice
  amount   = 1000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}

refund "r" { payment = "recurring_charge.gmy#2026-12-01T09:00+07:00" }`, "Reference to undeclared recurring charge", `Did you mean "recurring_charge.gym"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, files, diags := loadMain(t, decls+tt.src, nil, nil)
			text := renderDiags(t, files, diags)
			if cfg != nil {
				t.Fatalf("Load returned a Config, want a %q error", tt.summary)
			}
			for _, d := range diags.Errs() {
				d := d.(*hcl.Diagnostic)
				if d.Summary == tt.summary && strings.Contains(d.Detail, tt.detail) && d.Subject != nil {
					return
				}
			}
			t.Errorf("no %q error containing %q in:\n%s", tt.summary, tt.detail, text)
		})
	}
}

// TestLoadChargeBindingFromEachValue resolves binding.NAME[KEY] with a key
// computed from each.value, as a CSV of charges would.
func TestLoadChargeBindingFromEachValue(t *testing.T) {
	const src = `
binding "team" {
  for_each    = toset(["alice", "bob"])
  customer_id = each.key
  phone       = "628123456789"
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/failed"
}

recurring_charge "plan" {
  for_each = { for r in csvdecode("id,who,amount\nA1,bob,1000\nA2,alice,2000\n") : r.id => r }
  binding  = binding.team[each.value.who]
  amount   = each.value.amount
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}
`
	cfg, files, diags := loadMain(t, src, nil, nil)
	if cfg == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	var got []string
	for _, c := range cfg.Charges {
		got = append(got, c.Address+" "+c.Binding+" "+c.Amount.Value())
	}
	want := `recurring_charge.plan["A1"] binding.team["bob"] 1000.00|recurring_charge.plan["A2"] binding.team["alice"] 2000.00`
	if strings.Join(got, "|") != want {
		t.Errorf("Charges=%s, want %s", strings.Join(got, "|"), want)
	}
}
