// Command loadgen writes a large ddctl configuration (HCL with for_each
// over CSV files, as an operator writes one) and, with -state, the state
// file that applying it would leave, so that plan finds nothing to do:
//
//	go run ./internal/loadgen -refunds 10000 -charges 1000 -dir /tmp/big -state
//	ddctl -chdir /tmp/big plan -sandbox /tmp/big/sandbox
//
// The configuration has no doku block: give it one (a doku.hcl in DIR), or
// plan against the embedded sandbox as above, whose doku block joins it. A
// converged plan makes no call, so the sandbox needs no payments.
//
// It is internal/workload behind flags; the benchmarks use that package.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ddctl/ddctl/internal/state"
	"github.com/ddctl/ddctl/internal/workload"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p workload.Params
	dir := fs.String("dir", "", "write the configuration into `DIR` (required)")
	fs.IntVar(&p.Refunds, "refunds", 10000, "refund instances (rows of refunds.csv)")
	fs.IntVar(&p.Charges, "charges", 1000, "customers, each with a binding and a monthly recurring charge")
	fs.IntVar(&p.Months, "months", workload.DefaultMonths, "past occurrences of each charge")
	fs.StringVar(&p.Prefix, "prefix", workload.DefaultPrefix, "settings.reference_prefix")
	fs.StringVar(&p.Timezone, "timezone", workload.DefaultTimezone, "settings.timezone")
	at := fs.String("at", "", "count the occurrences back from `TIME` (RFC 3339; default now)")
	withState := fs.Bool("state", false, "also write DIR/ddctl.db: every refund succeeded, every binding active, every past occurrence paid")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "Error: loadgen needs -dir DIR and no arguments.\nTry: go run ./internal/loadgen -refunds 10000 -charges 1000 -dir /tmp/big -state")
		return 2
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			fmt.Fprintf(stderr, "Error: -at %q: want an RFC 3339 time such as 2026-11-23T10:00:00+07:00\n", *at)
			return 2
		}
		p.Now = t
	}
	p.Now = p.Now.Round(0)
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	path := filepath.Join(*dir, workload.StateFile)
	if _, err := os.Stat(path); *withState && err == nil {
		fmt.Fprintf(stderr, "Error: %s exists; remove it first (its entries would no longer match)\n", path)
		return 1
	}
	start := time.Now()
	if err := workload.Write(*dir, p); err != nil {
		fmt.Fprintf(stderr, "Error: write configuration: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote %s: %d refunds, %d bindings and recurring charges.\n", *dir, p.Refunds, p.Charges)
	if !*withState {
		return 0
	}
	cfg, err := workload.Load(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	// The generated bindings' secrets are not real: they are kept in the
	// clear, as ddctl does against the sandbox without a state key.
	st, err := state.OpenWith(path, state.OpenOptions{AllowPlaintextSecrets: true})
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	defer st.Close()
	n, err := workload.WriteState(ctx, st, cfg, p.Now)
	if err != nil {
		fmt.Fprintf(stderr, "Error: write state: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote %s in %v: %d refunds succeeded, %d bindings active, %d charge occurrences paid.\n",
		path, time.Since(start).Round(time.Millisecond), n.Refunds, n.Bindings, n.Occurrences)
	return 0
}
