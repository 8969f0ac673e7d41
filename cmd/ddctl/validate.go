package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"

	"github.com/ddctl/ddctl/internal/spec"
)

func runValidate(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var cf configFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print the result as one JSON document on stdout (format_version 1.0), also when invalid")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(s, "validate", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	cfg, diags, err := validateConfig(ctx, cf)
	if err != nil {
		if !*asJSON {
			fmt.Fprintf(s.stderr, "Error: %v\n", err)
			return exitError
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot start the embedded sandbox", Detail: err.Error()})
	}
	if *asJSON {
		if err := writeValidateJSON(s.stdout, diags); err != nil {
			fmt.Fprintf(s.stderr, "Error: write validate result: %v\n", err)
			return exitError
		}
		if diags.HasErrors() {
			return exitError
		}
		return exitOK
	}
	printDiagnostics(s.stderr, diags)
	if diags.HasErrors() {
		return exitError
	}
	fmt.Fprintf(s.stdout, "Success! The configuration is valid: %d bindings, %d unbinds, %d recurring charges, %d refunds.\n",
		len(cfg.Bindings), len(cfg.Unbinds), len(cfg.Charges), len(cfg.Refunds))
	return exitOK
}

// validateConfig is load for validate, which renders the diagnostics
// itself (text or JSON) and needs the sandbox no longer.
func validateConfig(ctx context.Context, cf configFlags) (cfg *spec.Config, diags hcl.Diagnostics, err error) {
	e, diags, err := load(ctx, cf)
	if e != nil {
		defer e.close()
		cfg = e.cfg
	}
	return cfg, diags, err
}

// validateJSON is validate -json's document, in the shape of terraform
// validate -json (format_version 1.0). It never holds a source snippet:
// a line of a configuration can hold a literal secret, and diagnostics
// themselves never do (spec's guarantee).
type validateJSON struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []diagnosticJSON `json:"diagnostics"`
}

type diagnosticJSON struct {
	Severity string     `json:"severity"` // "error" or "warning"
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail"`
	Range    *rangeJSON `json:"range,omitempty"` // nil when the diagnostic is not about a place in a file
}

type rangeJSON struct {
	Filename string  `json:"filename"`
	Start    posJSON `json:"start"`
	End      posJSON `json:"end"`
}

type posJSON struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// writeValidateJSON writes diags as one indented validateJSON document.
func writeValidateJSON(w io.Writer, diags hcl.Diagnostics) error {
	doc := validateJSON{FormatVersion: "1.0", Diagnostics: []diagnosticJSON{}}
	for _, d := range diags {
		dj := diagnosticJSON{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			dj.Severity = "warning"
			doc.WarningCount++
		} else {
			doc.ErrorCount++
		}
		if r := d.Subject; r != nil {
			dj.Range = &rangeJSON{
				Filename: r.Filename,
				Start:    posJSON{Line: r.Start.Line, Column: r.Start.Column, Byte: r.Start.Byte},
				End:      posJSON{Line: r.End.Line, Column: r.End.Column, Byte: r.End.Byte},
			}
		}
		doc.Diagnostics = append(doc.Diagnostics, dj)
	}
	doc.Valid = doc.ErrorCount == 0
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}
