package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/ddctl/ddctl/internal/reconcile"
)

// runShow is `ddctl show [-json] PLANFILE`: a saved plan, as text or as
// the documented JSON document. It reads nothing else and calls nothing.
func runShow(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	asJSON := fs.Bool("json", false, "print the plan as one JSON document (cmd/ddctl/json-format.md)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(s, "show", "want exactly one PLANFILE")
	}
	f, err := loadPlan(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	// Shown as it stands: apply checks its signature before it makes a
	// call, show needs no key.
	p := f.Plan
	render := reconcile.RenderText
	if *asJSON {
		render = reconcile.RenderJSON
	}
	if err := render(s.stdout, p, reconcile.RenderOptions{}); err != nil {
		fmt.Fprintf(s.stderr, "Error: %v\n", err)
		return exitError
	}
	return exitOK
}
