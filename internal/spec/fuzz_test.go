package spec

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad loads arbitrary text as main.hcl: Load must not panic, and must
// return a Config exactly when it reports no error, every error being a
// diagnostic with a summary. The seeds are the invalid corpus, every
// *.hcl file under examples/, and valid configurations using every block.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, exampleFiles(f)...)
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
	f.Add(allBlocks + minimalDOKU)

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
		for _, d := range diags {
			if d.Summary == "" {
				t.Fatalf("diagnostic without a summary: %+v", d)
			}
		}
		if cfg != nil {
			for _, c := range cfg.Charges {
				c.Occurrences(c.Start, c.Start.AddDate(0, 1, 0), cfg.Settings.Location)
			}
		}
	})
}

// exampleFiles lists every *.hcl file under the module's examples
// directory, skipping directories that cannot be read.
func exampleFiles(tb testing.TB) []string {
	tb.Helper()
	var paths []string
	err := filepath.WalkDir(filepath.Join("..", "..", "examples"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() && path != filepath.Join("..", "..", "examples") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() && strings.HasSuffix(path, ".hcl") {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return paths
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
