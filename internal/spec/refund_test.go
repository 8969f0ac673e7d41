package spec

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/money"
)

func TestLoadAmount(t *testing.T) {
	tests := []struct {
		expr string
		want money.Amount // 0 means an Invalid amount error
	}{
		{`50000`, 5000000},
		{`150000.5`, 15000050},
		{`150000.50`, 15000050},
		{`"150000.50"`, 15000050},
		{`"150000.500"`, 15000050}, // trailing zeros are not decimals that matter
		{`1e3`, 100000},
		{`0.01`, 1},
		{`"0.01"`, 1},
		{`9999999999999999.99`, money.MaxAmount},
		{`"9999999999999999.99"`, money.MaxAmount},
		{`25000 * 2`, 5000000},
		{`tonumber("12.34")`, 1234},
		{`0.009`, 0},
		{`1e-100`, 0},
		{`10000000000000000`, 0},
		{`"10000000000000000"`, 0},
		{`-0.5`, 0},
		{`"1,000"`, 0},
		{`" 100"`, 0},
		{`"+100"`, 0},
		{`["100"]`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			src := fmt.Sprintf("refund \"a\" {\n  payment = \"INV-1\"\n  amount  = %s\n}\n", tt.expr)
			cfg, files, diags := loadMain(t, src, nil, nil)
			if tt.want == 0 {
				if cfg != nil || len(diags) != 1 || diags[0].Summary != "Invalid amount" || diags[0].Subject.Start.Line != 3 {
					t.Errorf("want one Invalid amount error on line 3, got:\n%s", renderDiags(t, files, diags))
				}
				return
			}
			if cfg == nil {
				t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
			}
			if got := cfg.Refunds[0].Amount; got != tt.want {
				t.Errorf("Amount=%d, want %d", got, tt.want)
			}
		})
	}
}

func TestLoadNotBefore(t *testing.T) {
	tests := []struct {
		tz, expr string
		want     time.Time
	}{
		{"UTC", `"2026-12-05"`, time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)},
		{"Asia/Jakarta", `"2026-12-05"`, time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)},
		{"Asia/Jakarta", `"2026-12-05T02:00:00+07:00"`, time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)},
		{"Asia/Jakarta", `"2026-12-05T02:00:00Z"`, time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)},
		{"Asia/Jakarta", `timeadd("2026-12-05T02:00:00Z", "24h")`, time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)},
		{"Asia/Jakarta", `null`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.tz+" "+tt.expr, func(t *testing.T) {
			src := fmt.Sprintf("settings {\n  timezone = %q\n}\n\nrefund \"a\" {\n  payment    = \"INV-1\"\n  not_before = %s\n}\n", tt.tz, tt.expr)
			cfg, files, diags := loadMain(t, src, nil, nil)
			if cfg == nil {
				t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
			}
			if got := cfg.Refunds[0].NotBefore; !got.Equal(tt.want) {
				t.Errorf("NotBefore=%v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadForEachSet(t *testing.T) {
	const src = `
refund "r" {
  for_each = toset(["INV-2", "INV-1", "INV-2"])
  payment  = each.value
  reason   = "key ${each.key}"
}
`
	cfg, files, diags := loadMain(t, src, nil, nil)
	if cfg == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	var got []string
	for _, r := range cfg.Refunds {
		got = append(got, fmt.Sprintf("%s %s %s %s", r.Address, r.Key, r.Payment, r.Reason))
	}
	want := `refund.r["INV-1"] INV-1 INV-1 key INV-1|refund.r["INV-2"] INV-2 INV-2 key INV-2`
	if strings.Join(got, "|") != want {
		t.Errorf("Refunds=%s, want %s", strings.Join(got, "|"), want)
	}
}

// BenchmarkLoad loads 10,000 refunds, half as blocks and half from a CSV
// (README.md, "Performance": a whole plan in under a second).
func BenchmarkLoad(b *testing.B) {
	const n = 5000
	var blocks, csv strings.Builder
	csv.WriteString("id,ref,amount\n")
	for i := range n {
		fmt.Fprintf(&blocks, "refund \"r%d\" {\n  payment = \"INV-%d\"\n  amount  = %d\n  reason  = \"r\"\n}\n\n", i, i, 1000+i)
		fmt.Fprintf(&csv, "ORD-%d,PAY-%d,%d.50\n", i, i, 1000+i)
	}
	dir := b.TempDir()
	writeFiles(b, dir, map[string]string{
		"main.hcl":    minimalDOKU,
		"refunds.hcl": blocks.String(),
		"batch.csv":   csv.String(),
		"batch.hcl": `refund "batch" {
  for_each = { for r in csvdecode(file("batch.csv")) : r.id => r }
  payment  = each.value.ref
  amount   = each.value.amount
}
`,
	})
	opts := LoadOptions{Dir: dir}
	b.ReportAllocs()
	for b.Loop() {
		cfg := mustLoad(b, opts)
		if len(cfg.Refunds) != 2*n {
			b.Fatalf("%d refunds, want %d", len(cfg.Refunds), 2*n)
		}
	}
}
