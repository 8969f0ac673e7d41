package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/state"
)

func TestMain(m *testing.M) {
	// The crash test runs this binary as ddctl itself, to kill it.
	if os.Getenv("DDCTL_TEST_AS_DDCTL") == "1" {
		main()
		return
	}
	testscript.Main(m, map[string]func(){"ddctl": main})
}

// TestScripts runs the CLI scenarios of testdata/script against a real
// sandbox per script. Setup writes $WORK/doku.hcl for that sandbox, so a
// script's configuration is ready to plan; it exports $SANDBOX_URL.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			tb := env.T().(testing.TB)
			sb := sandboxtest.New(tb)
			sb.WriteDOKUBlock(tb, filepath.Join(env.WorkDir, "doku.hcl"))
			env.Setenv("SANDBOX_URL", sb.URL)
			env.Values["sandbox"] = sb
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"pay":      cmdPay,
			"payer":    cmdPayer,
			"calls":    cmdCalls,
			"refunds":  cmdRefunds,
			"waitfile": cmdWaitFile,
			"customer": cmdCustomer,
			"confirm":  cmdConfirm,
			"decline":  cmdDecline,
			"fault":    cmdFault,
			"advance":  cmdAdvance,
			"paymany":  cmdPayMany,
			"mark":     cmdMark,
			"newcalls": cmdNewCalls,
			"dokuset":  cmdDOKUSet,
			"newstate": cmdNewState,
		},
	})
}

func sandboxOf(ts *testscript.TestScript) *sandboxtest.Env {
	return ts.Value("sandbox").(*sandboxtest.Env)
}

// pay REF AMOUNT creates a paid payment in the script's sandbox.
func cmdPay(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: pay REF AMOUNT")
	}
	a, err := money.Parse(args[1])
	if err != nil {
		ts.Fatalf("pay: amount %q: %v", args[1], err)
	}
	raw, _ := json.Marshal(a.Value())
	_, err = sandboxOf(ts).Server.CreatePayment(context.Background(), sandbox.NewPayment{
		PartnerReferenceNo: args[0], Amount: raw, Phone: sandboxtest.PayerPhone,
	})
	ts.Check(err)
}

// payer [DIR] writes, in DIR or the work directory, payer.hcl, the binding block of the customer whose
// payments pay makes (bound outside ddctl), and payer.authcode, its
// authCode, for a script to adopt it with
// "stdin payer.authcode" and "exec ddctl import binding.payer payer-1".
func cmdPayer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: payer [DIR]")
	}
	dir := "."
	if len(args) == 1 {
		dir = args[0]
	}
	sb := sandboxOf(ts)
	ts.Check(os.WriteFile(ts.MkAbs(filepath.Join(dir, "payer.hcl")), []byte(payerHCL), 0o600))
	code, err := sb.Server.BindOutside(context.Background(), sandboxtest.PayerPhone, sandboxtest.PayerCustomerID)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(filepath.Join(dir, "payer.authcode")), []byte(code+"\n"), 0o600))
}

// calls OP N asserts that the sandbox has counted N requests to OP.
func cmdCalls(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: calls OP N")
	}
	want, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	if got := sandboxOf(ts).Server.Stats().Calls[args[0]]; got != want {
		ts.Fatalf("sandbox counted %d %s calls, want %d", got, args[0], want)
	}
}

// refunds N asserts that the sandbox's ledger holds N refunds.
func cmdRefunds(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: refunds N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	l, err := sandboxOf(ts).Server.Ledger(context.Background())
	ts.Check(err)
	if len(l.Refunds) != want {
		ts.Fatalf("sandbox ledger holds %d refunds, want %d", len(l.Refunds), want)
	}
}

// waitfile FILE waits (up to a minute) until FILE exists: a background
// process has written it.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	path := ts.MkAbs(args[0])
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	ts.Fatalf("%s did not appear within a minute", args[0])
}

// customer PHONE BALANCE gives PHONE an Allo account in the sandbox.
func cmdCustomer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: customer PHONE BALANCE")
	}
	raw, _ := json.Marshal(args[1])
	_, err := sandboxOf(ts).Server.PutCustomer(context.Background(), sandbox.NewCustomer{Phone: args[0], Balance: raw})
	ts.Check(err)
}

var confirmLink = regexp.MustCompile(`/sandbox/confirm/([0-9a-f]+)`)

// confirm approves, as the customer would, every confirmation link the
// last command printed on stdout.
func cmdConfirm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: confirm")
	}
	links := confirmLink.FindAllStringSubmatch(ts.ReadFile("stdout"), -1)
	if len(links) == 0 {
		ts.Fatalf("no confirmation link in the last stdout")
	}
	for _, m := range links {
		ts.Check(sandboxOf(ts).Server.Confirm(context.Background(), m[1], true))
	}
}

// decline rejects, as a customer who says no would, every confirmation
// link the last command printed on stdout.
func cmdDecline(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: decline")
	}
	links := confirmLink.FindAllStringSubmatch(ts.ReadFile("stdout"), -1)
	if len(links) == 0 {
		ts.Fatalf("no confirmation link in the last stdout")
	}
	for _, m := range links {
		ts.Check(sandboxOf(ts).Server.Confirm(context.Background(), m[1], false))
	}
}

// fault JSON sets the faults the sandbox injects, as POST /sandbox/faults
// takes them: fault '{"drop_rate":1,"ops":["refund"]}'. fault '{}' clears
// them.
func cmdFault(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fault JSON")
	}
	var f sandbox.Faults
	if err := json.Unmarshal([]byte(args[0]), &f); err != nil {
		ts.Fatalf("fault: %v", err)
	}
	sandboxOf(ts).Server.SetFaults(f)
}

// advance DURATION moves the sandbox's clock by DURATION (negative moves
// it back) and settles what fell due, such as confirmations that expired.
func cmdAdvance(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: advance DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	ts.Check(sandboxOf(ts).Server.Advance(context.Background(), d))
}

// paymany FORMAT N AMOUNT creates N paid payments in the sandbox, whose
// references are FORMAT (a Go format such as INV-%03d) of 1 to N.
func cmdPayMany(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: paymany FORMAT N AMOUNT")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	a, err := money.Parse(args[2])
	if err != nil {
		ts.Fatalf("paymany: amount %q: %v", args[2], err)
	}
	raw, _ := json.Marshal(a.Value())
	for i := 1; i <= n; i++ {
		_, err := sandboxOf(ts).Server.CreatePayment(context.Background(), sandbox.NewPayment{
			PartnerReferenceNo: fmt.Sprintf(args[0], i), Amount: raw, Phone: sandboxtest.PayerPhone,
		})
		ts.Check(err)
	}
}

// markFile holds the call counts the last mark saw, in the script's
// working directory.
const markFile = ".calls-mark.json"

// mark remembers the sandbox's call counts now, for newcalls.
func cmdMark(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: mark")
	}
	b, err := json.Marshal(sandboxOf(ts).Server.Stats().Calls)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(markFile), b, 0o600))
}

// newcalls [OP] N asserts that the sandbox has counted N requests to OP
// since the last mark; without OP, N requests of any kind.
func cmdNewCalls(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: newcalls [OP] N")
	}
	want, err := strconv.ParseInt(args[len(args)-1], 10, 64)
	ts.Check(err)
	var before map[string]int64
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(markFile)), &before))
	var got int64
	var detail []string
	for op, n := range sandboxOf(ts).Server.Stats().Calls {
		if len(args) == 2 && op != args[0] {
			continue
		}
		if d := n - before[op]; d != 0 {
			got += d
			detail = append(detail, fmt.Sprintf("%s=%d", op, d))
		}
	}
	if got != want {
		what := "calls"
		if len(args) == 2 {
			what = args[0] + " calls"
		}
		sort.Strings(detail)
		ts.Fatalf("sandbox counted %d %s since the mark (%s), want %d", got, what, strings.Join(detail, " "), want)
	}
}

// dokuset NAME VALUE adds the attribute NAME = VALUE (an HCL expression)
// to the doku block that setup wrote in doku.hcl: dokuset
// requests_per_second 1000.
func cmdDOKUSet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: dokuset NAME VALUE")
	}
	path := ts.MkAbs("doku.hcl")
	b, err := os.ReadFile(path)
	ts.Check(err)
	body, ok := strings.CutSuffix(string(b), "}\n")
	if !ok {
		ts.Fatalf("doku.hcl does not end its block with a closing brace")
	}
	ts.Check(os.WriteFile(path, []byte(body+"  "+args[0]+" = "+args[1]+"\n}\n"), 0o600))
}

// newstate TIME [DIR] creates the state file DIR/ddctl.db (DIR defaults
// to the work directory), as a run at TIME (RFC 3339) would have: it
// vouches for the keys of occurrences from then on. Scripts that plan for
// a time in the past (-at) use it, so that the state is older than what
// they plan, as in a real deployment.
func cmdNewState(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: newstate TIME [DIR]")
	}
	at, err := time.Parse(time.RFC3339, args[0])
	ts.Check(err)
	dir := "."
	if len(args) == 2 {
		dir = args[1]
	}
	st, err := state.OpenWith(ts.MkAbs(filepath.Join(dir, "ddctl.db")), state.OpenOptions{AllowPlaintextSecrets: true, NowFunc: func() time.Time { return at }})
	ts.Check(err)
	ts.Check(st.Close())
}
