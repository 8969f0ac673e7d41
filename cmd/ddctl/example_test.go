package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
)

// TestExamples loads and validates every example directory, each with the
// doku block of an embedded sandbox, as examples/README.md runs them.
func TestExamples(t *testing.T) {
	dirs, err := os.ReadDir("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		n++
		t.Run(d.Name(), func(t *testing.T) {
			dir := t.TempDir()
			copyExample(t, filepath.Join("../../examples", d.Name()), dir)
			sandboxtest.WriteKeys(t, filepath.Join(dir, "sandbox"))
			t.Chdir(dir)
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"validate", "-sandbox=sandbox"}, strings.NewReader(""), &out, &errb); code != exitOK {
				t.Fatalf("validate: exit %d\n%s%s", code, &out, &errb)
			}
			if !strings.Contains(out.String(), "Success! The configuration is valid") {
				t.Fatalf("validate said:\n%s", &out)
			}
		})
	}
	if n < 6 {
		t.Fatalf("%d example directories, want at least 6", n)
	}
}
