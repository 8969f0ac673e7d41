package spec

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestLoadLocals(t *testing.T) {
	const src = `
variable "prefix" {
  default = "INV"
}

locals {
  # Declared before what it uses: locals are evaluated by reference.
  payment = "${local.base}-${local.n}"
}

locals {
  base = upper(var.prefix)
  n    = 1 + 1
  rows = { for r in csvdecode("id,ref\nk1,A\nk2,B\n") : r.id => r }
}

refund "one" {
  payment = local.payment
}

refund "batch" {
  for_each = local.rows
  payment  = "${local.base}-${each.value.ref}"
}
`
	cfg, files, diags := loadMain(t, src, []string{"prefix=inv"}, nil)
	if cfg == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	var got []string
	for _, r := range cfg.Refunds {
		got = append(got, r.Address+"="+r.Payment)
	}
	want := `refund.batch["k1"]=INV-A refund.batch["k2"]=INV-B refund.one=INV-2`
	if strings.Join(got, " ") != want {
		t.Errorf("Refunds=%s, want %s", strings.Join(got, " "), want)
	}
}

func TestLoadLocalsSensitive(t *testing.T) {
	const src = `
variable "token" {
  sensitive = true
  default   = "tok-123"
}

locals {
  reason = "for ${var.token}"
}

refund "a" {
  payment = "INV-1"
  reason  = local.reason
}
`
	cfg, files, diags := loadMain(t, src, nil, nil)
	if cfg != nil || len(diags) != 1 || diags[0].Summary != "Sensitive value in printed field" {
		t.Fatalf("want one Sensitive value in printed field error, got:\n%s", renderDiags(t, files, diags))
	}
	if text := renderDiags(t, files, diags); strings.Contains(text, "tok-123") {
		t.Errorf("diagnostics reveal the secret:\n%s", text)
	}
}

func TestLoadVarFiles(t *testing.T) {
	const src = `
variable "x" {
  default = "default"
}

variable "ids" {
  type    = set(string)
  default = []
}

refund "a" {
  payment = "INV-${var.x}"
}

refund "b" {
  for_each = var.ids
  payment  = each.key
}
`
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"conf/main.hcl": src + minimalDOKU,
			"one.vars":      "x   = \"one\"\nids = [\"INV-7\", \"INV-8\"]\n",
			"two.vars":      "x = \"two\"\n",
			"bad.vars":      "# a comment\nx  = \"ok\"\nxx = \"typo\"\nids = 5\n",
			"syntax.vars":   "x = \n",
		})
		return dir
	}
	tests := []struct {
		name     string
		varFiles []string
		vars     []string
		env      []string
		want     string
	}{
		{"Default", nil, nil, nil, "INV-default"},
		{"File", []string{"one.vars"}, nil, nil, "INV-one"},
		{"FileOverEnv", []string{"one.vars"}, nil, []string{"DDCTL_VAR_x=env"}, "INV-one"},
		{"LaterFileWins", []string{"one.vars", "two.vars"}, nil, nil, "INV-two"},
		{"VarOverFile", []string{"two.vars"}, []string{"x=var"}, nil, "INV-var"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := setup(t)
			var varFiles []string
			for _, f := range tt.varFiles {
				varFiles = append(varFiles, filepath.Join(dir, f))
			}
			cfg, files, diags := Load(LoadOptions{Dir: filepath.Join(dir, "conf"), VarFiles: varFiles, Vars: tt.vars, Env: tt.env})
			if cfg == nil {
				t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
			}
			if got := cfg.Refunds[0].Payment; cfg.Refunds[0].Address != "refund.a" || got != tt.want {
				t.Errorf("Payment=%q, want %q", got, tt.want)
			}
			if tt.name == "File" && len(cfg.Refunds) != 3 {
				t.Errorf("%d refunds, want 3 (ids from the file)", len(cfg.Refunds))
			}
		})
	}

	t.Run("Errors", func(t *testing.T) {
		dir := setup(t)
		bad := filepath.Join(dir, "bad.vars")
		cfg, files, diags := Load(LoadOptions{Dir: filepath.Join(dir, "conf"), VarFiles: []string{bad}})
		if cfg != nil {
			t.Fatal("Load returned a Config despite errors")
		}
		want := []wantDiag{{line: 3, summary: "Value for undeclared variable"}, {line: 4, summary: "Invalid value for variable"}}
		var got []wantDiag
		for _, d := range diags.Errs() {
			d := d.(*hcl.Diagnostic)
			if d.Subject == nil || d.Subject.Filename != bad {
				continue // the for_each that uses the broken variable says it is unknown
			}
			got = append(got, wantDiag{line: d.Subject.Start.Line, summary: d.Summary})
			if d.Summary == "Value for undeclared variable" && !strings.Contains(d.Detail, `Did you mean "x"?`) {
				t.Errorf("Detail=%q, want a suggestion", d.Detail)
			}
		}
		if len(got) != len(want) || !containsDiag(got, want[0]) || !containsDiag(got, want[1]) {
			t.Errorf("errors=%v, want %v:\n%s", got, want, renderDiags(t, files, diags))
		}
		if files[bad] == nil {
			t.Errorf("files has no entry for the var file, so its lines cannot be shown")
		}
	})

	t.Run("SyntaxAndMissing", func(t *testing.T) {
		dir := setup(t)
		cfg, files, diags := Load(LoadOptions{Dir: filepath.Join(dir, "conf"),
			VarFiles: []string{filepath.Join(dir, "syntax.vars"), filepath.Join(dir, "none.vars")}})
		if cfg != nil {
			t.Fatal("Load returned a Config despite errors")
		}
		text := renderDiags(t, files, diags)
		if !strings.Contains(text, "Cannot read variable file") || !strings.Contains(text, "syntax.vars") {
			t.Errorf("want a syntax error in syntax.vars and Cannot read variable file, got:\n%s", text)
		}
	})
}
