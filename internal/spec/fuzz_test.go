package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad loads arbitrary text as main.hcl: Load must not panic, and must
// return a Config exactly when it reports no error.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range seeds {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src))
	}
	dir := f.TempDir()
	writeFiles(f, dir, map[string]string{"main.hcl": fuzzValid})
	mustLoad(f, LoadOptions{Dir: dir, Env: []string{"DDCTL_VAR_client_secret=sk-fuzz"}})
	f.Add(fuzzValid)

	f.Fuzz(func(t *testing.T, src string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, files, diags := Load(LoadOptions{Dir: dir, Env: []string{"DDCTL_VAR_client_secret=sk-fuzz"}})
		if files == nil {
			t.Fatal("files is nil")
		}
		if (cfg == nil) != diags.HasErrors() {
			t.Fatalf("cfg=%v with errors=%v", cfg != nil, diags.HasErrors())
		}
		if cfg != nil && cfg.Digest == "" {
			t.Fatal("Config without a Digest")
		}
	})
}

// fuzzValid is a valid main.hcl for the fuzz corpus.
const fuzzValid = minimalDOKU + `
settings {
  timezone = "UTC"
}

variable "client_secret" {
  sensitive = true
}

refund "a" {
  payment    = "INV-1"
  amount     = 50000
  not_before = "2026-12-05"
}

refund "batch" {
  for_each = { for r in csvdecode("id,ref\nk1,INV-1\n") : r.id => r }
  payment  = each.value.ref
  amount   = "150000.50"
}
`
