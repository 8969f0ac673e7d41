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
// doku block of an embedded sandbox, as examples/README.md runs them; an
// example with a doku block of its own (ci/) is validated without one.
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
			args := []string{"validate", "-sandbox=sandbox"}
			if ownDOKU(t, dir) {
				// A production configuration (ci/) has its own doku block,
				// which the sandbox's would duplicate: validate it as its
				// CI does, with the variables its workflow sets.
				setWorkflowVars(t, dir)
				args = []string{"validate"}
			} else {
				sandboxtest.WriteKeys(t, filepath.Join(dir, "sandbox"))
			}
			t.Chdir(dir)
			var out, errb bytes.Buffer
			if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != exitOK {
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
