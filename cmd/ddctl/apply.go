package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

func runApply(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		fmt.Fprintln(s.stderr, "Usage: ddctl apply [options] [PLANFILE]")
		fs.PrintDefaults()
	}
	var cf configFlags
	cf.register(fs)
	var lf lockFlags
	lf.register(fs)
	autoApprove := fs.Bool("auto-approve", false, "make the calls without asking (a PLANFILE is approved by being given)")
	parallelism := fs.Int("parallelism", reconcile.DefaultParallelism, "at most `N` calls at once")
	var targets listFlag
	fs.Var(&targets, "target", "apply only the instance, block or charge occurrence at `ADDR` (repeatable; not with PLANFILE, whose targets were chosen at plan time)")
	override := fs.String("override-limits", "", "apply even where the plan is over settings.limits, for this apply only; `REASON` is recorded in the history")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 1 {
		return usageError(s, "apply", "at most one PLANFILE")
	}
	if *parallelism < 1 {
		return usageError(s, "apply", "-parallelism must be at least 1")
	}
	if isFlagSet(fs, "override-limits") && strings.TrimSpace(*override) == "" {
		return usageError(s, "apply", "-override-limits needs a reason, such as -override-limits=\"finance checked the CSV, ticket 123\"")
	}
	planFile := fs.Arg(0)
	if planFile != "" && len(targets) > 0 {
		return usageError(s, "apply", "-target cannot be used with a PLANFILE: the plan's own targets apply")
	}

	e := loadConfig(ctx, s, cf)
	if e == nil {
		return exitError
	}
	tg, err := reconcile.ParseTargets(e.cfg, targets)
	if err != nil {
		e.close()
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	w, err := wire(ctx, s, e, "apply", lf, *parallelism, false)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	defer w.close()
	if e.sandbox != nil {
		defer func() { fmt.Fprintln(s.stdout, e.sandbox.statsLine()) }()
	}

	var p *reconcile.Plan
	if planFile != "" {
		f, err := loadPlan(planFile)
		if err != nil {
			fmt.Fprintf(s.stderr, "Error: %v\n", err)
			return exitError
		}
		if err := f.Verify(w.store.PlanKey(), w.store.UnsignedPlansAllowed()); err != nil {
			fmt.Fprintf(s.stderr, "Error: %s: %v. Nothing was sent; run plan -out again and apply what it saves.\n", planFile, err)
			return exitError
		}
		p = f.Plan
		serial, err := w.store.Serial(ctx)
		if err != nil {
			fmt.Fprintf(s.stderr, "Error: %v\n", err)
			return exitError
		}
		cont, err := w.store.Continuity(ctx)
		if err != nil {
			fmt.Fprintf(s.stderr, "Error: %v\n", err)
			return exitError
		}
		cur := reconcile.Current{Lineage: w.store.Lineage(), Serial: serial, Generation: cont.Generation, SpecDigest: e.cfg.Digest, Now: time.Now()}
		if err := reconcile.CheckFresh(p, cur); err != nil {
			fmt.Fprintf(s.stderr, "Error: %s: %v\n", planFile, err)
			return exitError
		}
		if err := p.FillPhones(e.cfg); err != nil {
			fmt.Fprintf(s.stderr, "Error: %s: %v\n", planFile, err)
			return exitError
		}
	} else {
		p, err = w.engine.Plan(ctx, e.cfg, reconcile.PlanOptions{At: time.Now(), Targets: tg})
		if err != nil {
			fmt.Fprintf(s.stderr, "Error: plan: %v\n", err)
			return exitError
		}
		reconcile.RenderText(s.stdout, p, reconcile.RenderOptions{Location: e.cfg.Settings.Location})
	}
	if len(p.OverLimit) > 0 {
		if *override == "" {
			fmt.Fprintf(s.stderr, "Error: the plan is over settings.limits; nothing was sent.\n")
			for _, l := range p.OverLimit {
				fmt.Fprintf(s.stderr, "  %s\n", l.Error())
			}
			fmt.Fprintf(s.stderr, "Correct the configuration, or, if the amounts are right, apply again with -override-limits=\"REASON\" (recorded in the history).\n")
			return exitError
		}
		p.Override = *override
		fmt.Fprintf(s.stdout, "\nWarning: going over settings.limits for this apply only, because: %s\n", *override)
		for _, l := range p.OverLimit {
			fmt.Fprintf(s.stdout, "  %s\n", l.Error())
		}
	} else if *override != "" {
		fmt.Fprintln(s.stdout, "\nNote: the plan is within settings.limits; -override-limits is not needed, and nothing is recorded for it.")
	}
	if planFile == "" && p.HasChanges() && !*autoApprove && !confirm(s) {
		fmt.Fprintln(s.stdout, "\nApply cancelled. Nothing was sent.")
		return exitError
	}

	code := exitOK
	if len(p.Errors) > 0 || len(p.Unresolved) > 0 {
		code = exitError
	}
	var run int64
	if p.HasChanges() {
		r := newRun("apply", e.cfg)
		r.Override = p.Override
		if run, err = w.store.StartRun(ctx, r); err != nil {
			fmt.Fprintf(s.stderr, "Error: record run: %v\n", err)
			return exitError
		}
	}
	if !p.HasChanges() {
		// A deferred charge spends an attempt (retry decides when it
		// comes again); only apply spends it, never a plan alone.
		if _, err := w.engine.Apply(ctx, p, run, nil); err != nil {
			fmt.Fprintf(s.stderr, "Error: %v\n", err)
			return exitError
		}
	}
	if err := recordApplied(ctx, s, w.store, e.cfg, p, run); err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	if !p.HasChanges() {
		if len(p.Errors) > 0 {
			fmt.Fprintf(s.stdout, "\nApply finished with errors! No call was made: %d in error, above.\n", len(p.Errors))
			return code
		}
		fmt.Fprintln(s.stdout, "\nApply complete! Nothing to do.")
		return code
	}
	fmt.Fprintln(s.stdout)
	prog := newProgress(s.stdout, len(p.Actions), !s.plain)
	res, err := w.engine.Apply(ctx, p, run, prog.report) // one report at a time
	prog.finish()
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		w.store.FinishRun(context.WithoutCancel(ctx), run, time.Now(), "failed")
		return exitError
	}
	for _, m := range p.Moved {
		fmt.Fprintf(s.stdout, "%s: moved to %s (%s; no call)\n", m.From, m.To, pluralEntries(m.Entries))
	}
	status := "succeeded"
	if res.Count(reconcile.ResultSucceeded) != len(res.Results) {
		status, code = "failed", exitError
	}
	for _, r := range res.Results {
		if r.Status == reconcile.ResultSkipped {
			fmt.Fprintln(s.stdout, reconcile.RenderResultLine(r))
		}
	}
	fmt.Fprintln(s.stdout)
	reconcile.RenderResultSummary(s.stdout, res, ctx.Err() != nil && res.Count(reconcile.ResultSucceeded) != len(res.Results))
	if err := w.store.FinishRun(context.WithoutCancel(ctx), run, time.Now(), status); err != nil {
		fmt.Fprintf(s.stderr, "Error: record end of run: %v\n", err)
	}
	return code
}

// confirm asks for approval on stdin, as Terraform does.
func confirm(s streams) bool {
	fmt.Fprint(s.stdout, "\nDo you want to make these calls? Only 'yes' will be accepted: ")
	line, _ := bufio.NewReader(s.stdin).ReadString('\n')
	return strings.TrimSpace(line) == "yes"
}

// recordApplied keeps a snapshot of the configuration this apply carried
// out, for ddctl daemon to reconcile from now on (README.md, "The
// daemon"): what was reviewed and applied, never later edits on disk. A
// targeted apply carried out only part of it, so it changes nothing there.
func recordApplied(ctx context.Context, s streams, store *state.Store, cfg *spec.Config, p *reconcile.Plan, run int64) error {
	if len(p.Targets) > 0 {
		fmt.Fprintln(s.stdout, "\nNote: a targeted apply leaves the configuration ddctl daemon reconciles as it was.")
		return nil
	}
	body, err := cfg.Snapshot()
	if err != nil {
		return fmt.Errorf("snapshot the applied configuration: %w", err)
	}
	changed, err := store.PutAppliedSpec(ctx, cfg.Digest, body, run, time.Now())
	if err != nil {
		return fmt.Errorf("record the applied configuration: %w", err)
	}
	if changed {
		fmt.Fprintf(s.stdout, "\nApplied configuration recorded for ddctl daemon (spec %.12s).\n", cfg.Digest)
	}
	return nil
}

// isFlagSet reports whether the flag name was given on the command line.
func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func pluralEntries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}
