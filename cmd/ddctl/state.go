package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/daemon"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// runState is `ddctl state list|show ADDR`: what the state file holds.
// Reading needs no lock; the state is never changed here.
func runState(ctx context.Context, args []string, s streams) int {
	if len(args) == 0 {
		return usageError(s, "state", "want a subcommand: list, show ADDR, rm ADDR, mv FROM TO or restore FILE")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(s.stdout, stateUsage)
		return exitOK
	case "rm":
		return runStateRm(ctx, args, s)
	case "mv":
		return runStateMv(ctx, args, s)
	case "restore":
		return runStateRestore(ctx, args, s)
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
	return usageError(s, "state", fmt.Sprintf("unknown subcommand %q: want list, show, rm, mv or restore", sub))
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
		if b.HoldsAuthCode {
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
	e := loadConfig(ctx, s, cf)
	if e == nil {
		return exitError
	}
	defer e.close()
	st, lock, code := lockAndOpen(ctx, s, e, "state rm", lf)
	if st == nil {
		return code
	}
	defer lock.Unlock()
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

// runStateMv is `ddctl state mv FROM TO`: the state's entries at FROM
// become TO's, as a moved block does at apply, with no call to DOKU. A
// refund, a binding, or a charge with every attempt of every occurrence
// moves; written without keys (refund.batch), every instance of the block
// moves, keys kept. Idempotency keys never change: what was sent under a
// key stays known under it.
func runStateMv(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("state mv", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		fmt.Fprintln(s.stderr, `Usage: ddctl state mv [options] FROM TO

Moves the state's entries at FROM to TO, with no call to DOKU: a refund, a
binding (its secrets are sealed again for TO, which needs the state key), or
a recurring charge with every attempt of every occurrence. Without instance
keys (refund.batch refund.batch_2026), every instance of the block moves,
keys kept. A moved block in the configuration does the same at apply, and is
what a reviewed change should use.

Options:`)
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
		return usageError(s, "state mv", "want two addresses, FROM and TO, such as recurring_charge.gym recurring_charge.gym_membership")
	}
	from, to := fs.Arg(0), fs.Arg(1)
	for _, a := range []string{from, to} {
		if err := checkMovable(a); err != nil {
			return usageError(s, "state mv", err.Error())
		}
	}
	block := !strings.Contains(from, "[") && !strings.Contains(to, "[")
	e := loadConfig(ctx, s, cf)
	if e == nil {
		return exitError
	}
	defer e.close()
	st, lock, code := lockAndOpen(ctx, s, e, "state mv", lf)
	if st == nil {
		return code
	}
	defer lock.Unlock()
	defer st.Close()
	runID, err := st.StartRun(ctx, newRun("state mv", e.cfg))
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: record run: %v\n", err)
		return exitError
	}
	n, err := st.Move(ctx, from, to, block, runID, time.Now())
	status := "succeeded"
	if err != nil || n == 0 {
		status = "failed"
	}
	st.FinishRun(context.WithoutCancel(ctx), runID, time.Now(), status)
	switch {
	case err != nil:
		fmt.Fprintf(s.stderr, "Error: %v\nNothing was moved.\n", err)
		return exitError
	case n == 0:
		fmt.Fprintf(s.stderr, "Error: the state has no %s.\nTry: ddctl state list\n", from)
		return exitError
	}
	fmt.Fprintf(s.stdout, "Moved %s to %s (%s). No call was made; every idempotency key is as it was.\n", from, to, pluralEntries(n))
	addrs := e.cfg.Addresses()
	inConfig := func(a string) bool {
		return slices.ContainsFunc(addrs, func(x string) bool { return x == a || block && strings.HasPrefix(x, a+"[") })
	}
	if inConfig(from) {
		fmt.Fprintf(s.stdout, "Warning: the configuration still has %s: rename its block to %s before the next plan, which would\n  otherwise find %s new and refuse it as a rename of %s.\n", from, to, from, to)
	}
	if !inConfig(to) {
		fmt.Fprintf(s.stdout, "Warning: the configuration has no %s yet: until it does, plans list it as no longer in configuration.\n", to)
	}
	fmt.Fprintln(s.stdout, "A running ddctl daemon reconciles the configuration last applied: apply the renamed configuration for it.")
	return exitOK
}

// checkMovable reports what is wrong with addr as an address state mv
// moves: a refund, binding or recurring charge, by block or instance.
func checkMovable(addr string) error {
	kind, _, _ := strings.Cut(addr, ".")
	if !slices.Contains([]string{"refund", "recurring_charge", "binding"}, kind) {
		return fmt.Errorf("%q is not the address of a refund, binding or recurring_charge: only their entries are in the state", addr)
	}
	if strings.Contains(addr, "#") {
		return fmt.Errorf("%q names one occurrence: a charge moves with all its occurrences; give its address without #TIME", addr)
	}
	return nil
}

// lockAndOpen takes the state's lock and opens the state file, which must
// exist, with its key. It prints why when it returns a nil store.
func lockAndOpen(ctx context.Context, s streams, e *env, command string, lf lockFlags) (*state.Store, *state.Lock, int) {
	path := e.cfg.Settings.State
	if !fileExists(path) {
		fmt.Fprintf(s.stderr, "Error: no state file at %s: nothing was planned or applied here yet.\n", path)
		return nil, nil, exitError
	}
	run := newRun(command, e.cfg)
	lock, err := state.AcquireLock(ctx, path, state.LockInfo{
		Operation: command, PID: run.PID, Host: run.Host, Who: run.User, Created: run.StartedAt}, lf.timeout)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return nil, nil, exitError
	}
	st := openStateFile(s, e)
	if st == nil {
		lock.Unlock()
		return nil, nil, exitError
	}
	return st, lock, exitOK
}

// openStateFile opens the existing state file of e's configuration with
// its key, and warns if it went back in time. It prints why when it
// returns nil.
func openStateFile(s streams, e *env) *state.Store {
	opts, err := stateOptions(e.cfg.DOKU)
	return openExisting(s, e.cfg.Settings.State, opts, err)
}

// openExisting opens the state file at path, which must exist, with opts
// (optsErr, when not nil, is why there are none), and warns if it went
// back in time. It prints why when it returns nil.
func openExisting(s streams, path string, opts state.OpenOptions, optsErr error) *state.Store {
	if !fileExists(path) {
		fmt.Fprintf(s.stderr, "Error: no state file at %s: nothing was planned or applied here yet.\n", path)
		return nil
	}
	err := optsErr
	if err == nil {
		var st *state.Store
		if st, err = state.OpenWith(path, opts); err == nil {
			warnRestored(s, st)
			return st
		}
	}
	fmt.Fprintf(s.stderr, "Error: %v\n", err)
	return nil
}

// runStateRestore is `ddctl state restore FILE`: a copy of the state (a
// backup) is put back in place, the one sound way to do it. As
// Terraform's state push, it checks the copy is this state's (its
// lineage); and it records the restore, so that no plan saved before it
// applies, and the next runs ask DOKU about every key the state has no
// record of since, before they send, defer or record anything under it.
func runStateRestore(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("state restore", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		fmt.Fprintln(s.stderr, `Usage: ddctl state restore [options] FILE

Puts FILE, a copy of the state file (a backup), in place of the state. The
state it replaces is kept beside it. The restore is recorded: plans saved
before it are refused, and the next runs ask DOKU, by status inquiry, about
every charge and refund they would send, defer or record and that the
restored state has no record of since, adopting what DOKU has. No call is
made by the restore itself. Stop ddctl daemon first.

Options:`)
		fs.PrintDefaults()
	}
	var cf configFlags
	cf.register(fs)
	var lf lockFlags
	lf.register(fs)
	force := fs.Bool("force", false, "restore FILE even when it is another state's (another lineage) than the one in place")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(s, "state restore", "want the copy to restore, such as ddctl state restore backups/ddctl-2026-12-01.db")
	}
	file := fs.Arg(0)
	e := loadConfig(ctx, s, cf)
	if e == nil {
		return exitError
	}
	defer e.close()
	path := e.cfg.Settings.State
	copyInfo, err := state.Inspect(ctx, file)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\nNothing was restored.\n", err)
		return exitError
	}
	if a, err := os.Stat(file); err == nil {
		if b, err := os.Stat(path); err == nil && os.SameFile(a, b) {
			return usageError(s, "state restore", fmt.Sprintf("%s is the state file itself: give the copy to put in its place", file))
		}
	}
	run := newRun("state restore", e.cfg)
	lock, err := state.AcquireLock(ctx, path, state.LockInfo{
		Operation: "state restore", PID: run.PID, Host: run.Host, Who: run.User, Created: run.StartedAt}, lf.timeout)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	defer lock.Unlock()
	opts, err := stateOptions(e.cfg.DOKU)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	backup := ""
	if fileExists(path) {
		cur, err := state.Inspect(ctx, path)
		if err != nil {
			fmt.Fprintf(s.stderr, "Error: the state in place: %v\nNothing was restored.\n", err)
			return exitError
		}
		if cur.Lineage != copyInfo.Lineage && !*force {
			fmt.Fprintf(s.stderr, "Error: %s is another state (lineage %s) than the one at %s (lineage %s).\n"+
				"Nothing was restored. If it is the copy you mean, run again with -force.\n", file, copyInfo.Lineage, path, cur.Lineage)
			return exitError
		}
		if err := noDaemon(ctx, path, opts); err != nil {
			fmt.Fprintf(s.stderr, "Error: %v\nNothing was restored.\n", err)
			return exitError
		}
		backup = fmt.Sprintf("%s.before-restore-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	}
	st, r, err := state.Restore(ctx, path, file, state.RestoreOptions{Open: opts, Now: time.Now(), Backup: backup})
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: restore %s: %v\n", file, err)
		return exitError
	}
	defer st.Close()
	fmt.Fprintf(s.stdout, "Restored %s (serial %d) to %s; it is now at serial %d, generation %d.\n", file, copyInfo.Serial, path, r.Serial, r.Generation)
	if backup != "" {
		fmt.Fprintf(s.stdout, "The state it replaced is kept as %s.\n", backup)
	}
	fmt.Fprintln(s.stdout, "No call was made. Plans saved before now are refused; the next plan asks DOKU about every charge and\n"+
		"refund the restored state has no record of since, and adopts what DOKU has, before anything is sent.")
	return exitOK
}

// noDaemon returns an error naming the daemon that holds the state at
// path, if one does: a restore under a running daemon would be lost to it.
func noDaemon(ctx context.Context, path string, opts state.OpenOptions) error {
	st, err := state.OpenWith(path, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	l, ok, err := st.Lease(ctx, daemon.LeaseName)
	if err != nil {
		return err
	}
	if ok && l.ExpiresAt.After(time.Now()) {
		return fmt.Errorf("ddctl daemon (pid %d on %s, last heartbeat %s) runs on %s: stop it first", l.PID, l.Host, l.RenewedAt.UTC().Format(time.RFC3339), path)
	}
	return nil
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
// "which reviewed change refunded ORD-7, and when"; and, in time order with
// them, the renames (moved blocks, state mv), the restores, and the
// applies that went over settings.limits with the reason given.
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
	addr := fs.Arg(0)
	ops, err := st.Operations(ctx, addr)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	runs, err := st.Runs(ctx)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	moves, err := st.Moves(ctx)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	byID := map[int64]state.Run{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	runText := func(id int64) string {
		r := byID[id]
		text := fmt.Sprintf("run %d (%s by %s, spec %s, commit %s)", id, r.Command, orDash(r.User), short(r.SpecDigest), short(r.GitCommit))
		if r.Override != "" {
			text += fmt.Sprintf(", over settings.limits because: %q", r.Override)
		}
		return text
	}
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	for _, op := range ops {
		outcome := op.Status.String()
		if op.SNAPCode != "" {
			outcome += " " + op.SNAPCode
		}
		lines = append(lines, line{op.CreatedAt, fmt.Sprintf("%s  %-28s %-7s %-22s key %s  %s",
			op.CreatedAt.Format(time.RFC3339), op.Address, op.Kind, outcome, op.IdempotencyKey, runText(op.RunID))})
	}
	for _, m := range moves {
		if addr != "" && addr != m.From && addr != m.To && !strings.HasPrefix(addr, m.To+"[") && !strings.HasPrefix(addr, m.To+"#") {
			continue
		}
		lines = append(lines, line{m.MovedAt, fmt.Sprintf("%s  %-28s moved from %s (%s; no call)  %s",
			m.MovedAt.Format(time.RFC3339), m.To, m.From, pluralEntries(m.Entries), runText(m.RunID))})
	}
	if addr == "" {
		for _, r := range runs {
			if strings.HasPrefix(r.Command, "state restore") || strings.HasPrefix(r.Command, "restore detected") {
				lines = append(lines, line{r.StartedAt, fmt.Sprintf("%s  the state was restored: %s  run %d", r.StartedAt.Format(time.RFC3339), r.Command, r.ID)})
			}
		}
	}
	if len(lines) == 0 {
		fmt.Fprintln(s.stdout, "No operations recorded.")
		return exitOK
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	for _, l := range lines {
		fmt.Fprintln(s.stdout, l.text)
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

const stateUsage = `Usage: ddctl state SUBCOMMAND [options] [ARGS]

Reads or changes the local state file; list, show and history need no doku
block, no network and no state key.

  list            every address the state holds
  show ADDR       what the state holds of ADDR
  rm ADDR         forget ADDR (no call; the next plan asks DOKU about it)
  mv FROM TO      give FROM's records TO's address (keys never change)
  restore FILE    put a backup of the state in place, and record it

Run ddctl state SUBCOMMAND -h for its options.
`

// openStateReadOnly loads the configuration for the state's path alone
// (no doku block needed, no network) and opens the state file, which must
// exist: reading never creates one. No secret is read, so neither is a
// state key needed.
func openStateReadOnly(ctx context.Context, s streams, cf configFlags) (*state.Store, *env, int) {
	cf.local = true
	e := loadConfig(ctx, s, cf)
	if e == nil {
		return nil, nil, exitError
	}
	st := openExisting(s, e.cfg.Settings.State, state.OpenOptions{WithoutSecrets: true}, nil)
	if st == nil {
		e.close()
		return nil, nil, exitError
	}
	return st, e, exitOK
}
