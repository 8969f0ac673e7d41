package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/ddctl/ddctl/internal/reconcile"
)

func runPlan(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var cf configFlags
	cf.register(fs)
	var lf lockFlags
	lf.register(fs)
	out := fs.String("out", "", "save the plan to `FILE` for apply")
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 with no changes, 1 on error, 2 with changes")
	at := fs.String("at", "", "evaluate the plan as of `TIME` (RFC 3339)")
	asJSON := fs.Bool("json", false, "print the plan as one JSON document (cmd/ddctl/json-format.md)")
	format := fs.String("format", "text", "print the plan as `text` or markdown (a pull-request comment, at most 60,000 characters)")
	expect := fs.String("expect", "", "refuse the plan (and save nothing) if it makes a call the plan in `FILE` (plan -review -json of the change, as shown for review) did not show, or comes from another configuration")
	review := fs.Bool("review", false, "plan for review only, reading no customer secret: no customer token is asked for, so charges are shown with their balances unchecked; the plan cannot be saved (what a pull request's plan runs; automatic with no state key against DOKU itself)")
	var targets listFlag
	fs.Var(&targets, "target", "plan only the instance, block or charge occurrence at `ADDR` (repeatable; for exceptional cases)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(s, "plan", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	now, err := parseAt(*at)
	if err != nil {
		return usageError(s, "plan", err.Error())
	}
	render := reconcile.RenderText
	switch {
	case *asJSON:
		render = reconcile.RenderJSON
	case *format == "markdown":
		render = reconcile.RenderMarkdown
	case *format != "text":
		return usageError(s, "plan", fmt.Sprintf("-format %q: want text or markdown", *format))
	}
	// Only the rendered plan goes to stdout; notes go to stderr when the
	// output is for a machine or a comment.
	notes := s.stdout
	if *asJSON || *format == "markdown" {
		notes = s.stderr
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
	w, err := wire(ctx, s, e, "plan", lf, 0, *review)
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	defer w.close()

	p, err := w.engine.Plan(ctx, e.cfg, reconcile.PlanOptions{At: now, Targets: tg})
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: plan: %v\n", err)
		return exitError
	}
	if err := render(s.stdout, p, reconcile.RenderOptions{Location: e.cfg.Settings.Location}); err != nil {
		fmt.Fprintf(s.stderr, "Error: render plan: %v\n", err)
		return exitError
	}
	if *expect != "" {
		if err := checkReviewed(*expect, p); err != nil {
			fmt.Fprintf(s.stderr, "Error: -expect %s: %v\n", *expect, err)
			return exitError
		}
		fmt.Fprintf(notes, "\nEvery call of this plan was in the reviewed plan %s.\n", *expect)
	}
	if *out != "" && p.ReviewOnly {
		fmt.Fprintf(s.stderr, "Error: -out: a plan made without customers' secrets (-review, or no state key) is for review only and cannot be saved; the plan above was not saved.\n")
		return exitError
	}
	if *out != "" {
		key := w.store.PlanKey()
		if key == nil && !w.store.UnsignedPlansAllowed() {
			fmt.Fprintf(s.stderr, "Error: -out: a saved plan is signed with a key derived from the state key, and none is set: set DDCTL_STATE_KEY or DDCTL_STATE_KEY_FILE where the plan is saved and applied. The plan above was not saved.\n")
			return exitError
		}
		if err := savePlan(*out, p, key); err != nil {
			fmt.Fprintf(s.stderr, "Error: save plan: %v\n", err)
			return exitError
		}
		fmt.Fprintf(notes, "\nSaved the plan to %s. To make exactly these calls, run:\n  ddctl apply %s\n", *out, *out)
	}
	if e.sandbox != nil {
		fmt.Fprintln(notes, e.sandbox.statsLine())
	}
	switch {
	case len(p.Errors) > 0 || len(p.OverLimit) > 0:
		return exitError
	case *detailed && p.HasChanges():
		return exitChanges
	}
	return exitOK
}

func savePlan(path string, p *reconcile.Plan, key []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil { // a file that was there keeps its mode otherwise
		f.Close()
		return err
	}
	if err := reconcile.WritePlan(f, p, key); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func loadPlan(path string) (*reconcile.PlanFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return reconcile.ReadPlan(f)
}

// checkReviewed compares p with the reviewed plan at path (plan -json).
func checkReviewed(path string, p *reconcile.Plan) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rv, err := reconcile.ReadReviewed(f)
	if err != nil {
		return err
	}
	return p.CheckReviewed(rv)
}
