package spec

import (
	"slices"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/money"
)

const movedHCL = `
settings {
  limits {
    refund            = 5000000
    charge            = "1000000.50"
    refunds_per_apply = 50000000
    charges_per_day   = 20000000
  }
}

doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

binding "alice" {
  customer_id = "cust-001"
  phone       = "6281234567890"
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

recurring_charge "gym_membership" {
  binding        = binding.alice
  amount         = 150000
  schedule       = "0 9 1 * *"
  start          = "2026-12-01"
  catch_up_grace = "6h"
}

refund "batch_2026" {
  for_each = { a = "INV-2", b = "INV-3" }
  payment  = each.value
}

refund "order_1001" {
  payment = "INV-1001"
}

# A chain: gym became fitness, then gym_membership.
moved {
  from = recurring_charge.gym
  to   = recurring_charge.fitness
}

moved {
  from = recurring_charge.fitness
  to   = recurring_charge.gym_membership
}

moved {
  from = refund.batch
  to   = refund.batch_2026
}

moved {
  from = refund.single
  to   = refund.order_1001
}
`

func TestMovedLoad(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.hcl": movedHCL})
	cfg := mustLoad(t, LoadOptions{Dir: dir})

	var got []string
	for _, m := range cfg.Moved {
		got = append(got, m.String())
	}
	want := []string{
		"moved { from = recurring_charge.fitness  to = recurring_charge.gym_membership }",
		"moved { from = recurring_charge.gym  to = recurring_charge.gym_membership }",
		"moved { from = refund.batch  to = refund.batch_2026 }",
		"moved { from = refund.single  to = refund.order_1001 }",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Moved=%q, want %q", got, want)
	}

	for addr, want := range map[string]string{
		"recurring_charge.gym":                          "recurring_charge.gym_membership",
		"recurring_charge.gym#2026-12-01T09:00+07:00":   "recurring_charge.gym_membership#2026-12-01T09:00+07:00",
		`refund.batch["a"]`:                             `refund.batch_2026["a"]`,
		"refund.single":                                 "refund.order_1001",
		"refund.batch_2026":                             "",
		"refund.singles":                                "",
		`recurring_charge.gymnastics#2026-12-01T09:00Z`: "",
	} {
		got, ok := cfg.Destination(addr)
		if got != want || ok != (want != "") {
			t.Errorf("Destination(%q)=%q, %v; want %q", addr, got, ok, want)
		}
	}
	if got := cfg.FormerAddresses("recurring_charge.gym_membership"); !slices.Equal(got, []string{"recurring_charge.fitness", "recurring_charge.gym"}) {
		t.Errorf("FormerAddresses(gym_membership)=%q", got)
	}
	if got := cfg.FormerAddresses(`refund.batch_2026["b"]`); !slices.Equal(got, []string{`refund.batch["b"]`}) {
		t.Errorf(`FormerAddresses(refund.batch_2026["b"])=%q`, got)
	}

	wantLimits := Limits{Refund: 500000000, Charge: 100000050, RefundsPerApply: 5000000000, ChargesPerDay: 2000000000}
	if cfg.Settings.Limits != wantLimits {
		t.Errorf("Limits=%+v, want %+v", cfg.Settings.Limits, wantLimits)
	}
	if g := cfg.Charges[0].CatchUpGrace; g != 6*time.Hour {
		t.Errorf("CatchUpGrace=%v, want 6h", g)
	}
}

// TestMovedDigestAndSnapshot: moved blocks, limits and catch_up_grace are
// desired state (a plan made without them must not apply with them), and
// the daemon's snapshot keeps them; a configuration without them keeps the
// digest it had before they existed.
func TestMovedDigestAndSnapshot(t *testing.T) {
	load := func(hcl string) *Config {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"main.hcl": hcl})
		return mustLoad(t, LoadOptions{Dir: dir})
	}
	with := load(movedHCL)
	for name, edit := range map[string][2]string{
		"no moved block":                   {"moved {\n  from = refund.single\n  to   = refund.order_1001\n}\n", ""},
		"another limit":                    {"refund            = 5000000", "refund            = 5000001"},
		"default grace":                    {`catch_up_grace = "6h"`, ""},
		"the grace spelled as the default": {`catch_up_grace = "6h"`, `catch_up_grace = "1h"`},
	} {
		other := load(replaceOnce(t, movedHCL, edit[0], edit[1]))
		if other.Digest == with.Digest {
			t.Errorf("%s: digest unchanged", name)
		}
	}
	// The default grace written out is the default: same digest.
	a := load(replaceOnce(t, movedHCL, `catch_up_grace = "6h"`, ""))
	b := load(replaceOnce(t, movedHCL, `catch_up_grace = "6h"`, `catch_up_grace = "60m"`))
	if a.Digest != b.Digest {
		t.Errorf("catch_up_grace = \"60m\" changes the digest of the default")
	}

	body := mustSnapshot(t, with)
	back, err := FromSnapshot(body, with.DOKU, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if back.Digest != with.Digest || back.Settings.Limits != with.Settings.Limits || len(back.Moved) != len(with.Moved) || back.Charges[0].CatchUpGrace != 6*time.Hour {
		t.Errorf("snapshot round trip: digest %s (want %s), limits %+v, %d moved, grace %v", back.Digest, with.Digest, back.Settings.Limits, len(back.Moved), back.Charges[0].CatchUpGrace)
	}
	if back.Settings.Limits.Charge != money.Amount(100000050) {
		t.Errorf("charge limit %v after the round trip", back.Settings.Limits.Charge)
	}
}

func replaceOnce(tb testing.TB, s, old, new string) string {
	tb.Helper()
	i := len(s)
	for j := 0; j+len(old) <= len(s); j++ {
		if s[j:j+len(old)] == old {
			i = j
			break
		}
	}
	if i == len(s) {
		tb.Fatalf("%q not found", old)
	}
	return s[:i] + new + s[i+len(old):]
}
