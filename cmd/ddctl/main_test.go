package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
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
			"calls":    cmdCalls,
			"refunds":  cmdRefunds,
			"waitfile": cmdWaitFile,
			"customer": cmdCustomer,
			"confirm":  cmdConfirm,
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
		PartnerReferenceNo: args[0], Amount: raw, Phone: "6281234567890",
	})
	ts.Check(err)
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
