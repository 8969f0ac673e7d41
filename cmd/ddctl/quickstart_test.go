package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
)

// TestQuickstart runs the README's first command on a copy of
// examples/quickstart three times: the first asks DOKU to bind the six
// payers (the sandbox's customers approve at once) while the refunds wait
// for their customer tokens, the second makes the six refunds, the third
// has nothing to do and makes no call.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	copyExample(t, "../../examples/quickstart", dir)
	sandboxtest.WriteKeys(t, filepath.Join(dir, "sandbox")) // skip generating RSA keys
	t.Chdir(dir)
	args := []string{"apply", "-sandbox=sandbox", "-auto-approve"}
	runs := []struct {
		name string
		want []string
		not  []string
	}{
		{"first run", []string{
			"Plan: 0 refunds, 6 binds. 6 waiting. 0 up to date.",
			`refund.batch["ORD-8"]: waits for binding.customer["cust-008"] to become active`,
			"Apply complete! Calls: 6 succeeded, 0 failed, 0 deferred, 0 unknown, 0 skipped.",
			"binding=6 payment=0 refund=0",
		}, []string{"refunded"}},
		{"second run", []string{
			"Plan: 6 refunds. 6 up to date.",
			`payer                = binding.customer["cust-008"]`,
			`refund.batch["ORD-8"]: refunded IDR 19,999.99 of "INV-2008"`,
			"Apply complete! Calls: 6 succeeded, 0 failed, 0 deferred, 0 unknown, 0 skipped.",
			"binding=0 payment=0 refund=6 status=0",
		}, nil},
		{"third run", []string{
			"No changes.",
			"Plan: 0 refunds. 12 up to date.",
			"Apply complete! Nothing to do.",
			"balance=0 binding=0 payment=0 refund=0 status=0 token_b2b=0 token_b2b2c=0 unbinding=0",
		}, nil},
	}
	for _, r := range runs {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != exitOK {
			t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", r.name, code, &out, &errb)
		}
		for _, want := range r.want {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("%s: stdout lacks %q:\n%s", r.name, want, &out)
			}
		}
		for _, not := range r.not {
			if strings.Contains(out.String(), not) {
				t.Fatalf("%s: stdout has %q:\n%s", r.name, not, &out)
			}
		}
	}
}

// copyExample copies an example's own files, leaving out what earlier runs
// made there (the state, the sandbox's keys and ledger).
func copyExample(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		generated := strings.HasPrefix(filepath.Base(rel), "ddctl.db") ||
			(filepath.Dir(rel) == "sandbox" && filepath.Base(rel) != "seed.json")
		if generated {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
