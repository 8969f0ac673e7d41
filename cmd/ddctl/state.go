package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// runState is `ddctl state list|show ADDR`: what the state file holds.
// Reading needs no lock; the state is never changed here.
func runState(ctx context.Context, args []string, s streams) int {
	if len(args) == 0 {
		return usageError(s, "state", "want a subcommand: list, show ADDR or rm ADDR")
	}
	sub, args := args[0], args[1:]
	if sub == "rm" {
		return runStateRm(ctx, args, s)
	}
	fs := flag.NewFlagSet("state "+sub, flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var cf configFlags
	cf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	st, e, code := openStateReadOnly(ctx, s, cf)
	if st == nil {
		return code
	}
	defer e.close()
	defer st.Close()
	entries, err := stateEntries(ctx, st, e.cfg.Settings.Location)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	switch sub {
	case "list":
		if fs.NArg() > 0 {
			return usageError(s, "state list", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
		}
		for i, en := range entries {
			if i == 0 || en.address != entries[i-1].address {
				fmt.Fprintln(s.stdout, en.address)
			}
		}
		return exitOK
	case "show":
		if fs.NArg() != 1 {
			return usageError(s, "state show", "want exactly one address, such as refund.order_1001")
		}
		addr, shown := fs.Arg(0), 0
		for _, en := range entries {
			// A charge's address shows each of its occurrences.
			if en.address == addr || strings.HasPrefix(en.address, addr+"#") {
				if shown > 0 {
					fmt.Fprintln(s.stdout)
				}
				fmt.Fprintf(s.stdout, "# %s%s\n", en.address, en.note)
				for _, kv := range en.attrs {
					fmt.Fprintf(s.stdout, "%-20s = %s\n", kv[0], kv[1])
				}
				shown++
			}
		}
		if shown == 0 {
			fmt.Fprintf(s.stderr, "Error: the state has no %s.\nTry: ddctl state list\n", addr)
			return exitError
		}
		return exitOK
	}
	return usageError(s, "state", fmt.Sprintf("unknown subcommand %q: want list, show or rm", sub))
}

// stateEntry is one thing the state knows, as state list and show print
// it: a binding, a refund, or one attempt at a charge occurrence. Secrets
// are never among its attributes, and phones are masked.
type stateEntry struct {
	address string
	note    string // " (attempt 2)" for a charge's later attempts
	attrs   [][2]string
}

func stateEntries(ctx context.Context, st *state.Store, loc *time.Location) ([]stateEntry, error) {
	var out []stateEntry
	q := strconv.Quote
	bindings, err := st.Bindings(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range bindings {
		authCode := "(none)"
		if !b.AuthCode.IsZero() {
			authCode = "(sensitive, encrypted)"
		}
		out = append(out, stateEntry{address: b.Address, attrs: [][2]string{
			{"customer_id", q(b.CustomerID)}, {"phone", reconcile.MaskPhone(b.Phone)}, {"status", string(b.Status)},
			{"reference_no", q(b.ReferenceNo)}, {"redirect_url", q(b.RedirectURL)}, {"auth_code", authCode},
			{"updated_at", b.UpdatedAt.Format(time.RFC3339)},
		}})
	}
	charges, err := st.Charges(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range charges {
		en := stateEntry{address: spec.OccurrenceAddress(c.Address, c.Occurrence, loc)}
		if c.Attempt > 1 {
			en.note = fmt.Sprintf(" (attempt %d)", c.Attempt)
		}
		en.attrs = [][2]string{
			{"binding", c.BindingAddress}, {"amount", c.Amount.String()}, {"attempt", strconv.Itoa(c.Attempt)},
			{"status", string(c.Status)}, {"partner_reference_no", q(c.PartnerReferenceNo)}, {"reference_no", q(c.ReferenceNo)},
			{"web_redirect_url", q(c.WebRedirectURL)}, {"snap_code", q(c.SNAPCode)}, {"message", q(c.Message)},
			{"updated_at", c.UpdatedAt.Format(time.RFC3339)},
		}
		out = append(out, en)
	}
	refunds, err := st.Refunds(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range refunds {
		out = append(out, stateEntry{address: r.Address, attrs: [][2]string{
			{"payment", q(r.Payment)}, {"amount", r.Amount.String()}, {"status", r.Status.String()},
			{"partner_refund_no", q(r.PartnerRefundNo)}, {"refund_no", q(r.RefundNo)},
			{"snap_code", q(r.SNAPCode)}, {"message", q(r.Message)},
			{"updated_at", r.UpdatedAt.Format(time.RFC3339)},
		}})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].address != out[j].address {
			return out[i].address < out[j].address
		}
		return out[i].note < out[j].note
	})
	return out, nil
}

// runStateRm is `ddctl state rm ADDR`: ddctl forgets an entry, with no
// call to DOKU (principle 1). The journal keeps its history; if the block
// is still in the configuration, the next plan asks DOKU about it afresh
// (its key is the same, so a refund DOKU made is found and adopted).
func runStateRm(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("state rm", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var cf configFlags
	cf.register(fs)
	var lf lockFlags
	lf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(s, "state rm", "want exactly one address, such as refund.order_1001")
	}
	st, e, code := openStateReadOnly(ctx, s, cf)
	if st == nil {
		return code
	}
	defer e.close()
	st.Close()
	run := newRun("state rm", e.cfg)
	lock, err := state.AcquireLock(ctx, e.cfg.Settings.State, state.LockInfo{
		Operation: "state rm", PID: run.PID, Host: run.Host, Who: run.User, Created: run.StartedAt}, lf.timeout)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	defer lock.Unlock()
	st, err = state.Open(e.cfg.Settings.State)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	defer st.Close()
	n, err := st.Forget(ctx, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	if n == 0 {
		fmt.Fprintf(s.stderr, "Error: the state has no %s.\nTry: ddctl state list\n", fs.Arg(0))
		return exitError
	}
	fmt.Fprintf(s.stdout, "Removed %s from the state (%d rows); its history stays. No call was made.\n", fs.Arg(0), n)
	return exitOK
}

// runForceUnlock is `ddctl force-unlock ID`: removes a lock record whose
// holder is gone, on a filesystem that kept its lock. The ID is the one a
// waiting run printed, so only the lock named is removed.
func runForceUnlock(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("force-unlock", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var cf configFlags
	cf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(s, "force-unlock", "want the lock ID a waiting run printed")
	}
	e := loadConfig(ctx, s, cf)
	if e == nil {
		return exitError
	}
	defer e.close()
	if err := state.ForceUnlock(e.cfg.Settings.State, fs.Arg(0)); err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	fmt.Fprintf(s.stdout, "Removed lock %s of %s. Make sure its holder is not running.\n", fs.Arg(0), e.cfg.Settings.State)
	return exitOK
}

// runHistory is `ddctl history [ADDR]`: every journalled operation, with
// the run that made it, its time, spec digest and git commit, to answer
// "which reviewed change refunded ORD-7, and when".
func runHistory(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var cf configFlags
	cf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return usageError(s, "history", "at most one address")
	}
	st, e, code := openStateReadOnly(ctx, s, cf)
	if st == nil {
		return code
	}
	defer e.close()
	defer st.Close()
	ops, err := st.Operations(ctx, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	runs, err := st.Runs(ctx)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	byID := map[int64]state.Run{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	if len(ops) == 0 {
		fmt.Fprintln(s.stdout, "No operations recorded.")
		return exitOK
	}
	for _, op := range ops {
		r := byID[op.RunID]
		outcome := op.Status.String()
		if op.SNAPCode != "" {
			outcome += " " + op.SNAPCode
		}
		fmt.Fprintf(s.stdout, "%s  %-28s %-7s %-22s key %s  run %d (%s by %s, spec %s, commit %s)\n",
			op.CreatedAt.Format(time.RFC3339), op.Address, op.Kind, outcome, op.IdempotencyKey,
			op.RunID, r.Command, orDash(r.User), short(r.SpecDigest), short(r.GitCommit))
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return orDash(strings.TrimSpace(s))
}

// openStateReadOnly loads the configuration (for the state's path) and
// opens the state file, which must exist: reading never creates one.
func openStateReadOnly(ctx context.Context, s streams, cf configFlags) (*state.Store, *env, int) {
	e := loadConfig(ctx, s, cf)
	if e == nil {
		return nil, nil, exitError
	}
	path := e.cfg.Settings.State
	if !fileExists(path) {
		e.close()
		fmt.Fprintf(s.stderr, "Error: no state file at %s: nothing was planned or applied here yet.\n", path)
		return nil, nil, exitError
	}
	opts, err := stateOptions(e.cfg.DOKU.Environment)
	if err != nil {
		e.close()
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return nil, nil, exitError
	}
	st, err := state.OpenWith(path, opts)
	if err != nil {
		e.close()
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return nil, nil, exitError
	}
	return st, e, exitOK
}
