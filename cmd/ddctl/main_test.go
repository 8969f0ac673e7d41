package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
