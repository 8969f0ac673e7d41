package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "big")
	var stdout, stderr bytes.Buffer
	args := []string{"-refunds", "5", "-charges", "2", "-at", "2026-11-23T10:00:00Z", "-dir", dir, "-state"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr.Bytes())
	}
	// 3 bindings: the refunds' payer and 2 customers.
	if want := "5 refunds succeeded, 3 bindings active, 24 charge occurrences paid."; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout = %q, want it to say %q", stdout.String(), want)
	}
	for _, name := range []string{"main.hcl", "refunds.csv", "customers.csv", "ddctl.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	// A second state over the first is refused.
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "exists") {
		t.Errorf("second run: exit %d, stderr %q; want 1 and the state file named", code, stderr.String())
	}
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "Try:") {
		t.Errorf("no -dir: exit %d, stderr %q; want 2 and a hint", code, stderr.String())
	}
}
