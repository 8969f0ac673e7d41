package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/state"
)

// TestCrashDuringApply kills the real binary (SIGKILL) at random moments of
// an apply of 50 refunds and 50 charges (customers auto-approve) against a
// sandbox with 20 ms of latency, 30 times in a row, then applies until
// converged. Every refund and every charge must exist exactly once in the
// ledger, and the state must agree with it.
func TestCrashDuringApply(t *testing.T) {
	const refunds, charges, kills = 50, 50, 30
	sb := sandboxtest.New(t, func(c *sandbox.Config) { c.AutoApprove = 50 * time.Millisecond })
	sb.Server.SetFaults(sandbox.Faults{Latency: 20 * time.Millisecond})
	dir := t.TempDir()
	sb.WriteDOKUBlock(t, filepath.Join(dir, "doku.hcl"))
	var cfg strings.Builder
	cfg.WriteString("settings {\n  reference_prefix = \"CRASH\"\n}\n")
	for i := range refunds {
		ref := fmt.Sprintf("INV-%03d", i)
		sb.Pay(t, ref, money.Amount(10000+i))
		fmt.Fprintf(&cfg, "refund \"r%03d\" {\n  payment = %q\n  binding = binding.payer\n}\n", i, ref)
	}
	sb.Server.PutCustomer(context.Background(), sandbox.NewCustomer{Phone: "6281234567890", Balance: []byte(`"100000000"`)})
	// The charges' customer; the refunds are of the payer's payments (Pay),
	// adopted below.
	cfg.WriteString(`binding "member" {
  customer_id = "cust-1"
  phone       = "6281234567890"
  success_url = "https://x.test/ok"
  failed_url  = "https://x.test/fail"
}
`)
	for i := range charges {
		// One occurrence each, long past: catch_up charges it once.
		fmt.Fprintf(&cfg, "recurring_charge \"c%03d\" {\n  binding = binding.member\n  amount = %d\n  schedule = \"0 9 1 1 *\"\n  start = \"2026-01-01\"\n  end = \"2026-01-02\"\n}\n", i, 1000+i)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	adoptPayer(t, sb, dir, nil)

	apply := func() *exec.Cmd {
		// One refund at a time stretches the refund phase (50 × 20 ms), so
		// that kills land among the requests as well as in the refresh.
		cmd := exec.Command(os.Args[0], "-chdir="+dir, "apply", "-auto-approve", "-lock-timeout=60s", "-parallelism=1")
		cmd.Env = append(os.Environ(), "DDCTL_TEST_AS_DDCTL=1")
		return cmd
	}
	killedMidway, refundsBefore := 0, sb.Calls(doku.OpRefund)
	for range kills {
		cmd := apply()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Early kills land in the refresh, later ones among the refunds
		// (the refresh is kept in the state, so each run gets further).
		time.Sleep(time.Duration(50+rand.IntN(1500)) * time.Millisecond)
		cmd.Process.Kill()
		err := cmd.Wait()
		if err != nil {
			killedMidway++
		}
	}
	refundsDuringKills := sb.Calls(doku.OpRefund) - refundsBefore
	// Apply until converged: charges wait for their customer between runs.
	converged := false
	for range 20 {
		if out, err := apply().CombinedOutput(); err != nil {
			t.Fatalf("apply after the kills: %v\n%s", err, out)
		}
		plan := exec.Command(os.Args[0], "-chdir="+dir, "plan", "-detailed-exitcode")
		plan.Env = append(os.Environ(), "DDCTL_TEST_AS_DDCTL=1")
		out, err := plan.CombinedOutput()
		if err == nil && strings.Contains(string(out), "No changes.") && !strings.Contains(string(out), "Awaiting") {
			converged = true
			break
		}
		time.Sleep(100 * time.Millisecond) // the customers approve after 50 ms
	}
	if !converged {
		t.Fatal("no convergence after 20 applies")
	}

	// The oracle: every refund and every charge exactly once, nothing
	// open, and the state agrees with the ledger.
	l := sb.Ledger(t)
	sv := readOracleState(t, statePath(dir), state.OpenOptions{AllowPlaintextSecrets: true})
	f := checkOracle(l, sv, wantOf(t, loadSpec(t, dir), time.Now()))
	requireOracle(t, f)
	if f.RefundsDemanded != refunds || f.ChargesDemanded != charges {
		t.Errorf("the oracle counted %d refunds and %d charges demanded, want %d and %d", f.RefundsDemanded, f.ChargesDemanded, refunds, charges)
	}
	ops := sv.Operations
	byInquiry := 0
	for _, op := range ops {
		if op.Message == "found by status inquiry" || op.Status == state.OpNotReceived {
			byInquiry++
		}
	}
	t.Logf("%d kills (%d before the run ended); %d refund requests reached the sandbox while killing, %d in all, for %d refunds; "+
		"%d payment requests for %d charges; %d journalled operations, %d of them left open by a kill and settled by status inquiry; "+
		"oracle: %s",
		kills, killedMidway, refundsDuringKills, sb.Calls(doku.OpRefund), refunds, sb.Calls(doku.OpPayment), charges,
		len(ops), byInquiry, f)
}
