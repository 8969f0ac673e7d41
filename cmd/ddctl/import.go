package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// runImport is `ddctl import binding.NAME CUSTOMER_ID`: it adopts a binding
// made outside ddctl. The binding's authCode is read from stdin, never from
// the command line (where shell history and process lists would keep it).
// One call is made, a customer-token exchange: DOKU gives a token only for
// an active binding (the UNCONFIRMED reading doku.BindingActivation,
// docs/doku.md#binding), so nothing inactive or mistyped is adopted.
func runImport(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		fmt.Fprintln(s.stderr, "Usage: ddctl import [options] binding.NAME CUSTOMER_ID   (the authCode on stdin)")
		fs.PrintDefaults()
	}
	var cf configFlags
	cf.register(fs)
	var lf lockFlags
	lf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		return usageError(s, "import", "want binding.NAME and CUSTOMER_ID, such as: ddctl import binding.alice cust-001 < authcode.txt")
	}
	addr, customerID := fs.Arg(0), fs.Arg(1)
	if !strings.HasPrefix(addr, "binding.") {
		return usageError(s, "import", fmt.Sprintf("%q: only bindings can be imported (binding.NAME)", addr))
	}
	e := loadConfig(ctx, s, cf)
	if e == nil {
		return exitError
	}
	want, err := importedBlock(e.cfg, addr, customerID)
	if err != nil {
		e.close()
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	if isTerminal(s.stdin) {
		fmt.Fprintf(s.stderr, "Enter the authCode of %s (kept encrypted in the state, never printed by ddctl): ", addr)
	}
	line, err := bufio.NewReader(s.stdin).ReadString('\n')
	authCode := strings.TrimSpace(line)
	if authCode == "" {
		e.close()
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("stdin is empty")
		}
		fmt.Fprintf(s.stderr, "Error: no authCode: %v. Give the binding's authCode on stdin, as in: ddctl import %s %s < authcode.txt\n", err, addr, customerID)
		return exitError
	}

	w, err := wire(ctx, s, e, "import", lf, 0, false)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	defer w.close()
	if !w.store.KeepsSecrets() {
		fmt.Fprintln(s.stderr, "Error: no state key: a binding's authCode is kept encrypted in the state. Set DDCTL_STATE_KEY (64 hex digits) or DDCTL_STATE_KEY_FILE. Nothing was recorded.")
		return exitError
	}
	have, err := w.store.Bindings(ctx)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	if b, ok := have[addr]; ok && b.Status != state.BindingUnbound {
		fmt.Fprintf(s.stderr, "Error: the state already has %s (%s). To replace it, run ddctl state rm %s first.\n", addr, b.Status, addr)
		return exitError
	}
	for _, b := range have {
		if b.CustomerID == customerID && b.Status != state.BindingUnbound {
			fmt.Fprintf(s.stderr, "Error: customer %q already has %s (%s) in the state; a customer has one binding at a time.\n", customerID, b.Address, b.Status)
			return exitError
		}
	}

	// The exchange tells an active binding; its token is cached for later
	// runs.
	code := secret.New(authCode)
	if _, err := w.client.CustomerToken(ctx, code); err != nil {
		var derr *doku.Error
		if errors.As(err, &derr) && derr.Code.HTTPStatus() == 403 {
			fmt.Fprintf(s.stderr, "Error: DOKU gives no customer token for this authCode (%s %s): the binding is not active (not confirmed yet, or unbound), or the authCode is not this merchant's. Nothing was recorded.\n", derr.Code, derr.Message)
		} else {
			fmt.Fprintf(s.stderr, "Error: could not ask DOKU about the binding: %v. Nothing was recorded; run ddctl import again later.\n", err)
		}
		return exitError
	}
	run := newRun("import", e.cfg)
	runID, err := w.store.StartRun(ctx, run)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: record run: %v\n", err)
		return exitError
	}
	now := time.Now()
	opID, err := w.store.RecordIntent(ctx, state.Operation{RunID: runID, Address: addr, Kind: state.KindImport,
		IdempotencyKey: addr, ExternalID: "-", Request: []byte(`{"customer_id":` + quoteJSON(customerID) + `}`)}, now)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	b := state.Binding{Address: addr, CustomerID: customerID, Phone: want.Phone, Status: state.BindingActive, AuthCode: code}
	status := "succeeded"
	if err := w.store.PutBinding(ctx, b, now); err != nil {
		fmt.Fprintf(s.stderr, "Error: record %s: %v\n", addr, err)
		status = "failed"
	}
	o := state.Outcome{Status: state.OpSucceeded, Message: "imported"}
	if status != "succeeded" {
		o = state.Outcome{Status: state.OpFailed, Message: "could not record the binding"}
	}
	if err := w.store.RecordOutcome(context.WithoutCancel(ctx), opID, o, time.Now()); err != nil {
		fmt.Fprintf(s.stderr, "Error: record outcome: %v\n", err)
	}
	if err := w.store.FinishRun(context.WithoutCancel(ctx), runID, time.Now(), status); err != nil {
		fmt.Fprintf(s.stderr, "Error: record end of run: %v\n", err)
	}
	if status != "succeeded" {
		return exitError
	}
	fmt.Fprintf(s.stdout, "Imported %s (customer %q, phone %s): active. DOKU was asked once, for the customer's token.\n",
		addr, customerID, reconcile.MaskPhone(want.Phone))
	if e.sandbox != nil {
		fmt.Fprintln(s.stdout, e.sandbox.statsLine())
	}
	return exitOK
}

// importedBlock is the binding block an import adopts an entry for: as in
// Terraform, the block is written first, and its customer must be the one
// named.
func importedBlock(cfg *spec.Config, addr, customerID string) (spec.Binding, error) {
	var names []string
	for _, b := range cfg.Bindings {
		if b.Address == addr {
			if b.CustomerID != customerID {
				return b, fmt.Errorf("%s is customer %q in %s, not %q; import the binding of the block's customer", addr, b.CustomerID, b.DeclRange, customerID)
			}
			return b, nil
		}
		names = append(names, b.Address)
	}
	return spec.Binding{}, fmt.Errorf("the configuration has no %s.%s Write its binding block first (customer_id = %q), then import it", addr, spec.DidYouMean(addr, names), customerID)
}

func quoteJSON(s string) string {
	b, _ := doku.Marshal(s)
	return string(b)
}

// isTerminal reports whether r is a character device (a person typing).
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
