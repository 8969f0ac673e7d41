package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestFileFunc(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "conf")
	writeFiles(t, root, map[string]string{
		"conf/data/ref.txt": "INV-42",
		"conf/latin1.txt":   "caf\xe9",
		"outside.txt":       "INV-outside",
	})
	if err := os.Symlink(filepath.Join(root, "outside.txt"), filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	file := fileFunc(dir)

	ok := []struct{ name, path string }{
		{"Relative", "data/ref.txt"},
		{"DotDotBackInside", "data/../data/ref.txt"},
		{"AbsoluteInside", filepath.Join(dir, "data", "ref.txt")},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			got, err := file.Call([]cty.Value{cty.StringVal(tt.path)})
			if err != nil {
				t.Fatalf("file(%q): %v", tt.path, err)
			}
			if got.AsString() != "INV-42" {
				t.Errorf("file(%q)=%q, want INV-42", tt.path, got.AsString())
			}
		})
	}

	refused := []struct{ name, path, want string }{
		{"DotDot", "../outside.txt", "outside the configuration directory"},
		{"Absolute", filepath.Join(root, "outside.txt"), "outside the configuration directory"},
		{"Symlink", "link.txt", "outside the configuration directory"},
		{"Missing", "nope.txt", "no file exists"},
		{"Empty", "", "empty"},
		{"NotUTF8", "latin1.txt", "UTF-8"},
		{"Directory", "data", "cannot read"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := file.Call([]cty.Value{cty.StringVal(tt.path)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("file(%q) error=%v, want one containing %q", tt.path, err, tt.want)
			}
		})
	}
}

func TestFunctions(t *testing.T) {
	fns := functions(t.TempDir())
	for _, name := range []string{
		"upper", "lower", "trimspace", "format", "join", "split", "replace", "substr", "length",
		"keys", "values", "lookup", "merge", "concat", "contains", "tostring", "tonumber",
		"coalesce", "min", "max", "abs", "floor", "ceil", "jsonencode", "jsondecode",
		"csvdecode", "formatdate", "timeadd", "file", "toset", "try", "can",
	} {
		if _, ok := fns[name]; !ok {
			t.Errorf("function %s is missing", name)
		}
	}

	length := fns["length"]
	for _, tt := range []struct {
		arg  cty.Value
		want int64
	}{
		{cty.StringVal("héllo"), 5},
		{cty.ListVal([]cty.Value{cty.True, cty.False}), 2},
		{cty.ObjectVal(map[string]cty.Value{"a": cty.True}), 1},
		{cty.TupleVal([]cty.Value{cty.True, cty.StringVal("x"), cty.Zero}), 3},
	} {
		got, err := length.Call([]cty.Value{tt.arg})
		if err != nil {
			t.Errorf("length(%#v): %v", tt.arg, err)
			continue
		}
		if n, _ := got.AsBigFloat().Int64(); n != tt.want {
			t.Errorf("length(%#v)=%d, want %d", tt.arg, n, tt.want)
		}
	}

	// Marks pass through the wrapper that hides errors.
	got, err := fns["upper"].Call([]cty.Value{cty.StringVal("x").Mark(sensitiveMark)})
	if unmarked, _ := got.Unmark(); err != nil || !got.HasMark(sensitiveMark) || !unmarked.RawEquals(cty.StringVal("X")) {
		t.Errorf("upper(sensitive x)=%#v, %v; want sensitive X", got, err)
	}
}

func TestLoadFiles(t *testing.T) {
	t.Run("NoFiles", func(t *testing.T) {
		cfg, files, diags := Load(LoadOptions{Dir: t.TempDir()})
		if cfg != nil || files == nil || len(diags) != 1 || diags[0].Summary != "No configuration files" {
			t.Errorf("got cfg=%v files=%v diags=%v, want only No configuration files", cfg, files, diags)
		}
	})
	t.Run("MissingDirectory", func(t *testing.T) {
		cfg, files, diags := Load(LoadOptions{Dir: filepath.Join(t.TempDir(), "nope")})
		if cfg != nil || files == nil || !diags.HasErrors() || diags[0].Summary != "Cannot read configuration directory" {
			t.Errorf("got cfg=%v files=%v diags=%v, want Cannot read configuration directory", cfg, files, diags)
		}
	})
	t.Run("ExtraFileAlsoInDirectory", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"main.hcl": minimalDOKU})
		cfg, files, diags := Load(LoadOptions{Dir: dir, ExtraFiles: []string{filepath.Join(dir, "main.hcl")}})
		if cfg == nil || len(files) != 1 {
			t.Errorf("the file given twice should load once:\n%s", renderDiags(t, files, diags))
		}
	})
	t.Run("MissingExtraFile", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"main.hcl": minimalDOKU})
		cfg, _, diags := Load(LoadOptions{Dir: dir, ExtraFiles: []string{filepath.Join(dir, "nope.hcl")}})
		if cfg != nil || !diags.HasErrors() || diags[0].Summary != "Cannot read configuration file" {
			t.Errorf("got cfg=%v diags=%v, want Cannot read configuration file", cfg, diags)
		}
	})
	t.Run("RelativeDirectory", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"conf/main.hcl": minimalDOKU})
		t.Chdir(dir)
		cfg, files, diags := Load(LoadOptions{Dir: "conf"})
		if cfg == nil {
			t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
		}
		if _, ok := files[filepath.Join("conf", "main.hcl")]; !ok {
			t.Errorf("files=%v, want the key conf/main.hcl as given", files)
		}
		if want, _ := filepath.EvalSymlinks(filepath.Join(dir, "conf")); mustEval(t, cfg.Dir) != want {
			t.Errorf("Dir=%s, want %s", cfg.Dir, want)
		}
		if want := filepath.Join(cfg.Dir, "merchant.pem"); cfg.DOKU.PrivateKeyFile != want {
			t.Errorf("PrivateKeyFile=%s, want %s", cfg.DOKU.PrivateKeyFile, want)
		}
		if want := filepath.Join(cfg.Dir, defaultState); cfg.Settings.State != want {
			t.Errorf("State=%s, want %s", cfg.Settings.State, want)
		}
	})
}

func mustEval(tb testing.TB, p string) string {
	tb.Helper()
	p, err := filepath.EvalSymlinks(p)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
