package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/state"
)

// The kill -9 soak. Its size is the number
// of kill attempts, DDCTL_SOAK_KILLS (default soakKills, so that go test
// ./... stays quick); the published figures come from
//
//	DDCTL_SOAK_KILLS=300 go test ./cmd/ddctl -run TestKillSoak -v
const (
	soakKills        = 15
	soakChargeBlocks = 20 // × soakOccurrences = 200 charges
	soakOccurrences  = 10
	soakOtherRefunds = 30 // + soakChargeRefunds = 60 refunds
	soakChargeRefund = 30
	soakUnbinds      = 20
	soakMaxRuns      = 60 // per cycle; a cycle takes 5–25
)

// TestKillSoak applies, cycle after cycle, a workload of 200 charges (20
// blocks of 10 caught-up occurrences, one member), 60 refunds (30 of those
// charges, 30 of payments made elsewhere, by a payer adopted with ddctl
// import) and 20 unbinds (of bindings
// made active beforehand), with the real binary, and kills it with
// SIGKILL at a uniformly random moment 20–400 ms after it starts; then it
// runs it again (armed again) until a run ends on its own and a plan
// finds nothing left to do or wait for. Each cycle has its own state file
// and reference prefix, and the oracle checks it. When the kill attempts
// are spent, the cycle under way is finished without kills.
//
// Figures: kill attempts; kills that landed mid-run (the process was
// still running), and those among the money requests (the sandbox saw a
// payment, refund or unbinding request during the killed run); double
// charges, double refunds, missing refunds, unresolved intents (the
// oracle's counts, summed over cycles); integrity_check failures; re-runs
// to converge per cycle (median, p99).
func TestKillSoak(t *testing.T) {
	kills := soakKills
	if s := os.Getenv("DDCTL_SOAK_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("DDCTL_SOAK_KILLS=%q: want a positive number of kill attempts", s)
		}
		kills = n
	}
	start := time.Now()
	sb := sandboxtest.New(t, func(c *sandbox.Config) { c.AutoApprove = 5 * time.Millisecond })
	key := hexKey()
	cipher := mustCipher(t, key)
	env := []string{"DDCTL_STATE_KEY=" + key}

	var (
		attempts, landed, amongRequests, integrityFailures int
		reruns                                             []int
		total                                              oracleFigures
	)
	for cycle := 0; attempts < kills; cycle++ {
		dir := soakWorkload(t, sb, env, cycle)
		runs, lastOut, left := 0, "", ""
		for {
			runs++
			if runs > soakMaxRuns {
				requireOracle(t, checkOracle(sb.Ledger(t), readOracleState(t, statePath(dir), state.OpenOptions{Cipher: cipher, SecretScope: stateScope(t, dir, env...)}), wantOf(t, loadSpec(t, dir, env...), time.Now())))
				t.Fatalf("cycle %d: no convergence after %d runs; left: %s; the last apply's output ends:\n%s", cycle, soakMaxRuns, left, lastLines(lastOut, 25))
			}
			cmd := ddctlExec(env, "-chdir="+dir, "apply", "-auto-approve", "-lock-timeout=60s")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			before := sb.Server.Stats().Calls
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			armed := attempts < kills
			var timer *time.Timer
			if armed {
				attempts++
				timer = time.AfterFunc(time.Duration(20+rand.IntN(381))*time.Millisecond, func() { cmd.Process.Kill() })
			}
			cmd.Wait()
			if timer != nil {
				timer.Stop()
			}
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				landed++
				after := sb.Server.Stats().Calls
				for _, op := range []doku.Op{doku.OpPayment, doku.OpRefund, doku.OpUnbinding} {
					if after[op.String()] > before[op.String()] {
						amongRequests++
						break
					}
				}
				continue
			}
			// An apply that exits 1 on its own (an earlier outcome still
			// unknown) is run again; one that never converges fails above.
			lastOut = out.String()
			if left = soakLeft(t, dir, env); left == "" {
				break
			} else if !armed {
				time.Sleep(20 * time.Millisecond) // the sandbox approves on its next tick
			}
		}
		reruns = append(reruns, runs)
		if res := integrityCheck(t, statePath(dir)); res != "ok" {
			integrityFailures++
			t.Errorf("cycle %d: integrity_check: %s", cycle, res)
		}
		f := checkOracle(sb.Ledger(t), readOracleState(t, statePath(dir), state.OpenOptions{Cipher: cipher, SecretScope: stateScope(t, dir, env...)}), wantOf(t, loadSpec(t, dir, env...), time.Now()))
		requireOracle(t, f)
		if f.ChargesDemanded != soakChargeBlocks*soakOccurrences || f.RefundsDemanded != soakOtherRefunds+soakChargeRefund || f.UnbindsDemanded != soakUnbinds {
			t.Fatalf("cycle %d demands %d charges, %d refunds, %d unbinds", cycle, f.ChargesDemanded, f.RefundsDemanded, f.UnbindsDemanded)
		}
		total = addFigures(total, f)
	}
	slices.Sort(reruns)
	t.Logf("kill -9 soak: %d kill attempts at 20–400 ms, %d landed mid-run, %d of them among the money requests; %d cycles of 200 charges, 60 refunds, 20 unbinds; %v",
		attempts, landed, amongRequests, len(reruns), time.Since(start).Round(time.Millisecond))
	t.Logf("double charges %d, double refunds %d, missing refunds %d, missing charges %d, missing unbinds %d, unresolved intents %d, integrity_check failures %d; "+
		"state vs ledger: %d mismatches, %d orphans, %d ghosts",
		total.DoubleCharges, total.DoubleRefunds, total.MissingRefunds, total.MissingCharges, total.MissingUnbinds, total.OpenOperations, integrityFailures,
		total.Mismatches, total.Orphans, total.Ghosts)
	t.Logf("runs to converge per cycle (the killed ones included): median %d, p99 %d, max %d (all: %v)",
		percentile(reruns, 50), percentile(reruns, 99), reruns[len(reruns)-1], reruns)
}

// soakWorkload prepares cycle's configuration directory: its bindings
// made active first (applied without kills), then the workload written.
func soakWorkload(tb testing.TB, sb *sandboxtest.Env, env []string, cycle int) string {
	tb.Helper()
	ctx := context.Background()
	dir := filepath.Join(tb.TempDir(), fmt.Sprintf("cycle%03d", cycle))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	writeDOKUBlock(tb, sb, dir, "requests_per_second = 1000")
	settings := fmt.Sprintf("settings {\n  reference_prefix = \"SOAK%03dZ\"\n}\n", cycle)
	binding := func(name, cust, phone string) string {
		return fmt.Sprintf("binding %q {\n  customer_id = %q\n  phone = %q\n  success_url = \"https://x.test/ok\"\n  failed_url = \"https://x.test/fail\"\n}\n", name, cust, phone)
	}
	var b strings.Builder
	b.WriteString(settings)
	payer := fmt.Sprintf("62858%03d9999", cycle)
	if _, err := sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: payer, Balance: []byte(`"100000000"`)}); err != nil {
		tb.Fatal(err)
	}
	b.WriteString(binding("member", fmt.Sprintf("soak-%03d-payer", cycle), payer))
	for i := range soakUnbinds {
		phone := fmt.Sprintf("62858%03d%04d", cycle, i)
		if _, err := sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: phone, Balance: []byte(`"0"`)}); err != nil {
			tb.Fatal(err)
		}
		b.WriteString(binding(fmt.Sprintf("u%02d", i), fmt.Sprintf("soak-%03d-u%02d", cycle, i), phone))
	}
	writeHCL(tb, dir, "main.hcl", b.String())
	// The payments made elsewhere (Pay) are the payer's, bound outside
	// ddctl: adopted before the first apply, for the refunds' customer
	// token.
	adoptPayer(tb, sb, dir, env)
	for range 50 {
		out, errOut, code := runDDCTLEnv(tb, dir, env, "apply", "-auto-approve")
		if code != 0 {
			tb.Fatalf("cycle %d: binding apply exited %d:\n%s%s", cycle, code, out, errOut)
		}
		if strings.Contains(out, "Nothing to do") && !strings.Contains(out, "Awaiting") {
			break
		}
		time.Sleep(30 * time.Millisecond) // the sandbox approves on its next tick
	}
	if left := soakLeft(tb, dir, env); left != "" {
		tb.Fatalf("cycle %d: bindings not active: %s", cycle, left)
	}

	// The workload: the member's charges, refunds, and an unbind for each
	// other binding (whose block goes: a binding and an unbind of the same
	// customer are an error).
	b.Reset()
	b.WriteString(settings)
	b.WriteString(binding("member", fmt.Sprintf("soak-%03d-payer", cycle), payer))
	for i := range soakChargeBlocks {
		fmt.Fprintf(&b, "recurring_charge \"c%02d\" {\n  binding = binding.member\n  amount = %d\n  schedule = \"%d * * * *\"\n  start = \"2026-01-01T00:00:00+07:00\"\n  end = \"2026-01-01T09:59:00+07:00\"\n  catch_up = \"all\"\n}\n",
			i, 1000+i, i)
	}
	for i := range soakChargeRefund {
		fmt.Fprintf(&b, "refund \"c%02d\" {\n  payment = \"recurring_charge.c%02d#2026-01-01T%02d:%02d+07:00\"\n}\n", i, i%soakChargeBlocks, i/soakChargeBlocks, i%soakChargeBlocks)
	}
	for i := range soakOtherRefunds {
		ref := fmt.Sprintf("SOAK%03d-INV-%02d", cycle, i)
		sb.Pay(tb, ref, money.Amount(20000+i))
		fmt.Fprintf(&b, "refund \"o%02d\" {\n  payment = %q\n  binding = binding.payer\n}\n", i, ref)
	}
	for i := range soakUnbinds {
		fmt.Fprintf(&b, "unbind \"u%02d\" {\n  customer_id = \"soak-%03d-u%02d\"\n  reason = \"soak\"\n}\n", i, cycle, i)
	}
	writeHCL(tb, dir, "main.hcl", b.String())
	return dir
}

// jsonPlan is what the convergence check reads of plan -json.
type jsonPlan struct {
	Changes    []struct{ Address string } `json:"resource_changes"`
	Waiting    []struct{ Address string } `json:"waiting"`
	Awaiting   []struct{ Address string } `json:"awaiting"`
	Deferred   []struct{ Address string } `json:"deferred"`
	Errors     []struct{ Address string } `json:"errors"`
	Unresolved []struct{ Address string } `json:"unresolved"`
}

// soakLeft runs ddctl plan -json in dir and names what is left to do or
// wait for; "" when the configuration has converged.
func soakLeft(tb testing.TB, dir string, env []string) string {
	tb.Helper()
	out, errOut, code := runDDCTLEnv(tb, dir, env, "plan", "-json", "-lock-timeout=60s")
	var p jsonPlan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		tb.Fatalf("plan -json exited %d: %v\n%s", code, err, errOut)
	}
	var parts []string
	for _, l := range []struct {
		what string
		n    int
		addr string
	}{
		{"changes", len(p.Changes), firstAddress(p.Changes)}, {"waiting", len(p.Waiting), firstAddress(p.Waiting)},
		{"awaiting", len(p.Awaiting), firstAddress(p.Awaiting)}, {"deferred", len(p.Deferred), firstAddress(p.Deferred)},
		{"errors", len(p.Errors), firstAddress(p.Errors)}, {"unresolved", len(p.Unresolved), firstAddress(p.Unresolved)},
	} {
		if l.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (%s…)", l.n, l.what, l.addr))
		}
	}
	return strings.Join(parts, ", ")
}

func firstAddress(l []struct{ Address string }) string {
	if len(l) == 0 {
		return ""
	}
	return l[0].Address
}

// runDDCTLEnv is runDDCTL with env added.
func runDDCTLEnv(tb testing.TB, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	tb.Helper()
	cmd := ddctlExec(env, append([]string{"-chdir=" + dir}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		tb.Fatalf("ddctl %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

func mustCipher(tb testing.TB, hexKey string) *state.Cipher {
	tb.Helper()
	k, err := state.ParseKey(hexKey)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := state.NewCipher(k)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func addFigures(a, b oracleFigures) oracleFigures {
	a.ChargesDemanded += b.ChargesDemanded
	a.ChargesPaid += b.ChargesPaid
	a.DoubleCharges += b.DoubleCharges
	a.MissingCharges += b.MissingCharges
	a.RefundsDemanded += b.RefundsDemanded
	a.RefundsMade += b.RefundsMade
	a.DoubleRefunds += b.DoubleRefunds
	a.MissingRefunds += b.MissingRefunds
	a.OverRefunds += b.OverRefunds
	a.UnbindsDemanded += b.UnbindsDemanded
	a.Unbound += b.Unbound
	a.MissingUnbinds += b.MissingUnbinds
	a.OpenOperations += b.OpenOperations
	a.Mismatches += b.Mismatches
	a.Orphans += b.Orphans
	a.Ghosts += b.Ghosts
	a.Unexpected += b.Unexpected
	a.Violations = append(a.Violations, b.Violations...)
	return a
}

// percentile is the p-th percentile of sorted (nearest rank).
func percentile(sorted []int, p int) int {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted) + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// writeDOKUBlock writes sb's doku block into dir/doku.hcl, with attrs
// ("name = value") added: ddctl's default of 10 requests per second
// would make a test of hundreds of calls wait for its rate limit.
func writeDOKUBlock(tb testing.TB, sb *sandboxtest.Env, dir string, attrs ...string) {
	tb.Helper()
	path := filepath.Join(dir, "doku.hcl")
	sb.WriteDOKUBlock(tb, path)
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	body, ok := strings.CutSuffix(string(b), "}\n")
	if !ok {
		tb.Fatalf("%s does not end its block with a closing brace", path)
	}
	for _, a := range attrs {
		body += "  " + a + "\n"
	}
	if err := os.WriteFile(path, []byte(body+"}\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
}
