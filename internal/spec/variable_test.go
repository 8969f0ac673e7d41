package spec

import (
	"cmp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// minimalDOKU is a valid doku block with no variables.
const minimalDOKU = `
doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}
`

// loadMain loads a directory holding main.hcl (src plus minimalDOKU) with
// the given -var values and environment.
func loadMain(tb testing.TB, src string, vars, env []string) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	tb.Helper()
	dir := tb.TempDir()
	writeFiles(tb, dir, map[string]string{"main.hcl": src + minimalDOKU})
	return Load(LoadOptions{Dir: dir, Vars: vars, Env: env})
}

func TestLoadVariablePrecedence(t *testing.T) {
	const src = `
variable "x" {
  default = "default"
}

refund "a" {
  payment = "INV-${var.x}"
}
`
	tests := []struct {
		name string
		vars []string
		env  []string
		want string
	}{
		{"Default", nil, nil, "INV-default"},
		{"Env", nil, []string{"DDCTL_VAR_x=env"}, "INV-env"},
		{"VarOverEnv", []string{"x=var"}, []string{"DDCTL_VAR_x=env"}, "INV-var"},
		{"LastVarWins", []string{"x=first", "x=second"}, nil, "INV-second"},
		{"ValueWithEquals", []string{"x=a=b"}, nil, "INV-a=b"},
		{"EmptyValue", []string{"x="}, nil, "INV-"},
		{"OtherEnvIgnored", nil, []string{"DDCTL_VARx=no", "X=no", "ddctl_var_x=no"}, "INV-default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, files, diags := loadMain(t, src, tt.vars, tt.env)
			if diags.HasErrors() {
				t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
			}
			if got := cfg.Refunds[0].Payment; got != tt.want {
				t.Errorf("Payment=%q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadVariableTypes(t *testing.T) {
	const src = `
variable "rps" {
  type    = number
  default = 1
}

variable "ids" {
  type    = set(string)
  default = []
}

variable "on" {
  type    = bool
  default = false
}

refund "a" {
  for_each = var.on ? var.ids : toset([])
  payment  = each.key
  amount   = var.rps * 1000
}
`
	cfg, files, diags := loadMain(t, src, []string{`ids=["INV-1", "INV-2"]`, "rps=2.5", "on=true"}, nil)
	if diags.HasErrors() {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	var got []string
	for _, r := range cfg.Refunds {
		got = append(got, r.Address+" "+r.Payment+" "+r.Amount.Value())
	}
	want := `refund.a["INV-1"] INV-1 2500.00, refund.a["INV-2"] INV-2 2500.00`
	if strings.Join(got, ", ") != want {
		t.Errorf("Refunds=%s, want %s", strings.Join(got, ", "), want)
	}
}

func TestLoadVariableErrors(t *testing.T) {
	const src = `
variable "rps" {
  type    = number
  default = 1
}

variable "ids" {
  type    = list(string)
  default = []
}

variable "pin" {
  type      = number
  sensitive = true
  default   = 1
}

refund "a" {
  payment = "INV-1"
}
`
	tests := []struct {
		name     string
		vars     []string
		env      []string
		summary  string
		detail   []string               // substrings the detail must contain
		hidden   string                 // a string that must appear in no diagnostic
		subject  bool                   // whether the diagnostic points into the file
		severity hcl.DiagnosticSeverity // DiagError when zero
	}{
		{
			name: "Malformed", vars: []string{"sk-live-pasted-alone"},
			summary: "Invalid -var option", detail: []string{"number 1", "name=value"}, hidden: "sk-live-pasted-alone",
		},
		{
			name: "EmptyName", vars: []string{"=x"},
			summary: "Invalid -var option", detail: []string{"name=value"},
		},
		{
			name: "Undeclared", vars: []string{"nope=1"},
			summary: "Value for undeclared variable", detail: []string{`"nope"`, "-var"},
		},
		{
			name: "NotANumber", vars: []string{"rps=fast"},
			summary: "Invalid value for variable", detail: []string{`"rps"`, "-var", "number"}, subject: true,
		},
		{
			name: "NotANumberFromEnv", env: []string{"DDCTL_VAR_rps=fast"},
			summary: "Invalid value for variable", detail: []string{`"rps"`, "DDCTL_VAR_rps"}, subject: true,
		},
		{
			name: "NotAList", vars: []string{"ids=[unclosed"},
			summary: "Invalid value for variable", detail: []string{`"ids"`, "list(string)"}, subject: true,
		},
		{
			name: "SensitiveNotANumber", vars: []string{"pin=secret-pin-9876"},
			summary: "Invalid value for variable", detail: []string{`"pin"`}, hidden: "secret-pin-9876", subject: true,
		},
		{
			name: "UndeclaredEnvIsAWarning", env: []string{"DDCTL_VAR_nope=1"},
			summary: "Value for undeclared variable", detail: []string{"DDCTL_VAR_nope"}, severity: hcl.DiagWarning,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			severity := cmp.Or(tt.severity, hcl.DiagError)
			cfg, files, diags := loadMain(t, src, tt.vars, tt.env)
			text := renderDiags(t, files, diags)
			if severity == hcl.DiagError && cfg != nil {
				t.Errorf("Load returned a Config despite errors")
			}
			if severity == hcl.DiagWarning && cfg == nil {
				t.Errorf("Load returned no Config for a warning:\n%s", text)
			}
			var found *hcl.Diagnostic
			for _, d := range diags {
				if d.Summary == tt.summary && d.Severity == severity {
					found = d
				}
			}
			if found == nil {
				t.Fatalf("no %q diagnostic in:\n%s", tt.summary, text)
			}
			for _, s := range tt.detail {
				if !strings.Contains(found.Detail, s) {
					t.Errorf("Detail=%q, want it to contain %q", found.Detail, s)
				}
			}
			if (found.Subject != nil) != tt.subject {
				t.Errorf("Subject=%v, want a subject: %v", found.Subject, tt.subject)
			}
			if tt.hidden != "" && strings.Contains(text, tt.hidden) {
				t.Errorf("diagnostics reveal %q:\n%s", tt.hidden, text)
			}
		})
	}
}

func TestLoadRequiredVariable(t *testing.T) {
	const src = `
variable "client_secret" {
  sensitive = true
}
`
	cfg, files, diags := loadMain(t, src, nil, nil)
	if cfg != nil || len(diags) != 1 || diags[0].Summary != "No value for required variable" {
		t.Fatalf("want one No value for required variable error, got:\n%s", renderDiags(t, files, diags))
	}
	if d := diags[0]; d.Subject == nil || d.Subject.Start.Line != 2 || !strings.Contains(d.Detail, "DDCTL_VAR_client_secret") {
		t.Errorf("diagnostic=%+v, want line 2 and a hint to DDCTL_VAR_client_secret", d)
	}
	if cfg, files, diags := loadMain(t, src, nil, []string{"DDCTL_VAR_client_secret=sk"}); cfg == nil {
		t.Errorf("with DDCTL_VAR_client_secret: unexpected errors:\n%s", renderDiags(t, files, diags))
	}
}

func TestLoadVariableNullDefault(t *testing.T) {
	const src = `
variable "amount" {
  type    = number
  default = null
}

refund "a" {
  payment = "INV-1"
  amount  = var.amount
}
`
	cfg, files, diags := loadMain(t, src, nil, nil)
	if cfg == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	if got := cfg.Refunds[0].Amount; got != 0 {
		t.Errorf("Amount=%d, want 0 (the full paid amount)", got)
	}
	cfg, files, diags = loadMain(t, src, []string{"amount=1000.5"}, nil)
	if cfg == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	if got := cfg.Refunds[0].Amount; got != 100050 {
		t.Errorf("Amount=%d, want 100050", got)
	}
}
