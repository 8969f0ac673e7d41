package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ddctl/ddctl/internal/spec"
)

// exitUnformatted is fmt -check's exit code when a file would change, as
// terraform fmt -check's.
const exitUnformatted = 3

// fmtArgs are fmt's arguments.
type fmtArgs struct {
	check     bool     // change nothing; exit 3 if a file would change
	diff      bool     // print each change as a unified diff
	recursive bool     // also walk the subdirectories of each directory
	paths     []string // files and directories, as given; "." by default
}

func runFmt(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("fmt", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		fmt.Fprint(s.stderr, `Usage: ddctl [-chdir=DIR] fmt [options] [DIR or FILE ...]

Rewrites the *.hcl files of the current directory (or of each DIR, and
each FILE) into the canonical layout, keeping comments, and lists the
files it changed. Subdirectories whose name starts with "." are skipped.

Exit codes: 0 all formatted, 1 a file could not be read, parsed or
written (other files are still formatted), 3 with -check: a file would
change.

Options:
`)
		fs.PrintDefaults()
	}
	var a fmtArgs
	fs.BoolVar(&a.check, "check", false, "change no file; list the files that would change and exit 3 if there are any")
	fs.BoolVar(&a.diff, "diff", false, "print a unified diff of each change")
	fs.BoolVar(&a.recursive, "recursive", false, "also format the subdirectories")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	a.paths = fs.Args()
	if len(a.paths) == 0 {
		a.paths = []string{"."}
	}

	failed, changed := false, false
	for _, name := range fmtFiles(s, a, &failed) {
		if ctx.Err() != nil {
			fmt.Fprintf(s.stderr, "Error: fmt: interrupted before %s\n", name)
			return exitError
		}
		c, err := fmtFile(s, a, name)
		if err != nil {
			fmt.Fprintf(s.stderr, "Error: %v\n", err)
			failed = true
		}
		changed = changed || c
	}
	switch {
	case failed:
		return exitError
	case a.check && changed:
		return exitUnformatted
	}
	return exitOK
}

// fmtFiles lists the files to format: each FILE as given, and the *.hcl
// files of each DIR (and of its subdirectories with -recursive), in
// lexical order. Names are relative as the paths were given. A path that
// cannot be read is reported and sets *failed.
func fmtFiles(s streams, a fmtArgs, failed *bool) []string {
	var names []string
	for _, root := range a.paths {
		info, err := os.Stat(root)
		if err != nil {
			fmt.Fprintf(s.stderr, "Error: fmt: %v\n", err)
			*failed = true
			continue
		}
		if !info.IsDir() {
			names = append(names, root)
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				fmt.Fprintf(s.stderr, "Error: fmt: %v\n", err)
				*failed = true
				return nil // WalkDir skips what it could not read
			}
			if d.IsDir() {
				if path == root {
					return nil
				}
				if !a.recursive || strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), ".hcl") {
				names = append(names, path)
			}
			return nil
		})
		if err != nil {
			fmt.Fprintf(s.stderr, "Error: fmt: %v\n", err)
			*failed = true
		}
	}
	return names
}

// fmtFile formats one file: it lists the file if it changes, prints the
// diff with -diff and rewrites it unless -check. A file that does not
// parse gets its diagnostics printed and is left alone. changed says
// whether the file is (or, with -check, would be) changed.
func fmtFile(s streams, a fmtArgs, name string) (changed bool, err error) {
	src, err := os.ReadFile(name)
	if err != nil {
		return false, fmt.Errorf("fmt: %w", err)
	}
	out, diags := spec.Format(src, name)
	if diags.HasErrors() {
		printDiagnostics(s.stderr, diags)
		return false, fmt.Errorf("%s was not formatted: fix the syntax errors above and run ddctl fmt again", name)
	}
	if bytes.Equal(src, out) {
		return false, nil
	}
	fmt.Fprintln(s.stdout, name)
	if a.diff {
		fmt.Fprint(s.stdout, spec.UnifiedDiff(filepath.ToSlash(name), src, out))
	}
	if a.check {
		return true, nil
	}
	if err := writeFileAtomic(name, out); err != nil {
		return true, fmt.Errorf("fmt: write %s: %w", name, err)
	}
	return true, nil
}

// writeFileAtomic replaces the file name (the file a symlink points to,
// if it is one) with data, keeping its permission bits: it writes a
// temporary file next to it and renames it over, so that a crash leaves
// either the old content or the new.
func writeFileAtomic(name string, data []byte) (err error) {
	path, err := filepath.EvalSymlinks(name)
	if err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(info.Mode().Perm()); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
