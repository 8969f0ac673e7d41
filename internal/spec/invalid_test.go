package spec

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// errorMarker matches the comment that marks the line a diagnostic should
// land on: # ERROR: <summary>.
var errorMarker = regexp.MustCompile(`#\s*ERROR:\s*(.+?)\s*$`)

// wantDiag is an expected error: its summary on its line.
type wantDiag struct {
	line    int
	summary string
}

// TestLoadInvalid loads each testdata/invalid/NAME.hcl (with any NAME.*
// companion file, such as a CSV) alone in a temporary directory and checks
// that the errors are exactly those its # ERROR: comments announce.
func TestLoadInvalid(t *testing.T) {
	paths, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no testdata/invalid/*.hcl files")
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".hcl")
		t.Run(name, func(t *testing.T) {
			want := errorMarkers(t, path)
			if len(want) == 0 {
				t.Fatalf("%s has no # ERROR: comment", path)
			}
			dir := copyCase(t, path)

			cfg, files, diags := Load(LoadOptions{Dir: dir})
			if cfg != nil {
				t.Errorf("Load returned a Config despite errors")
			}
			var got []wantDiag
			for _, d := range diags.Errs() {
				diag := d.(*hcl.Diagnostic)
				if diag.Subject == nil {
					t.Errorf("diagnostic %q has no Subject", diag.Summary)
					continue
				}
				got = append(got, wantDiag{line: diag.Subject.Start.Line, summary: diag.Summary})
			}
			for _, w := range want {
				if !containsDiag(got, w) {
					t.Errorf("missing error %q on line %d", w.summary, w.line)
				}
			}
			for _, g := range got {
				if !containsDiag(want, g) {
					t.Errorf("unexpected error %q on line %d", g.summary, g.line)
				}
			}
			if t.Failed() {
				t.Logf("diagnostics:\n%s", renderDiags(t, files, diags))
			}
		})
	}
}

func containsDiag(list []wantDiag, d wantDiag) bool {
	for _, l := range list {
		if l == d {
			return true
		}
	}
	return false
}

// errorMarkers reads the # ERROR: comments of the file at path.
func errorMarkers(tb testing.TB, path string) []wantDiag {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var want []wantDiag
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if m := errorMarker.FindStringSubmatch(sc.Text()); m != nil {
			want = append(want, wantDiag{line: line, summary: m[1]})
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return want
}

// copyCase copies the case file at path, and its companions (same name,
// other extension), into a new temporary directory and returns it.
func copyCase(tb testing.TB, path string) string {
	tb.Helper()
	dir := tb.TempDir()
	companions, err := filepath.Glob(strings.TrimSuffix(path, ".hcl") + ".*")
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range companions {
		src, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), src, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// renderDiags renders diags as cmd would, with source snippets.
func renderDiags(tb testing.TB, files map[string]*hcl.File, diags hcl.Diagnostics) string {
	tb.Helper()
	var b strings.Builder
	w := hcl.NewDiagnosticTextWriter(&b, files, 0, false)
	if err := w.WriteDiagnostics(diags); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}
