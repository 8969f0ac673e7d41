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
// examples/quickstart twice: the first run plans and applies every refund,
// the second has nothing to do and makes no refund call.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	copyExample(t, "../../examples/quickstart", dir)
	sandboxtest.WriteKeys(t, filepath.Join(dir, "sandbox")) // skip generating RSA keys
	t.Chdir(dir)
	args := []string{"apply", "-sandbox=sandbox", "-auto-approve"}

	var out, errb bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Fatalf("first run: exit %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errb)
	}
	for _, want := range []string{
		"Plan: 6 refunds. 0 up to date.",
		`refund.batch["ORD-8"]: refunded IDR 19,999.99 of "INV-2008"`,
		"Apply complete! Calls: 6 succeeded, 0 failed, 0 deferred, 0 unknown, 0 skipped.",
		"refund=6 status=6 token_b2b=1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("first run: stdout lacks %q:\n%s", want, &out)
		}
	}

	out.Reset()
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Fatalf("second run: exit %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errb)
	}
	for _, want := range []string{
		"No changes.",
		"Plan: 0 refunds. 6 up to date.",
		"Apply complete! Nothing to do.",
		"refund=0 status=0 token_b2b=0",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("second run: stdout lacks %q:\n%s", want, &out)
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
