package spec

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in canonical layout: hclwrite's indentation, spacing
// and alignment of "=" signs, with every comment kept. It is pure and
// idempotent: Format of its own output returns that output unchanged.
//
// filename only names the source in diagnostics. When src does not parse
// (hclsyntax.ParseConfig reports an error), Format returns nil and those
// diagnostics, so that a broken file is never rewritten; hclwrite alone
// would accept it and could move its tokens around.
func Format(src []byte, filename string) ([]byte, hcl.Diagnostics) {
	_, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	return hclwrite.Format(src), diags
}

// diffContext is how many unchanged lines a hunk of UnifiedDiff shows
// around each change, as diff -u.
const diffContext = 3

// UnifiedDiff returns the line-based unified diff from a to b, with
// "--- a/NAME" and "+++ b/NAME" headers and "@@" hunks of diffContext
// lines of context, in the format of diff -u (including its
// "\ No newline at end of file" marker). It returns "" when a and b are
// equal.
//
// The edit script is a longest common subsequence of the lines after the
// common prefix and suffix are set aside, so its cost is quadratic in the
// number of differing lines: fine for configuration files, not meant for
// large inputs.
func UnifiedDiff(name string, a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	ops := diffLines(x, y)

	var sb strings.Builder
	fmt.Fprintf(&sb, "--- a/%s\n+++ b/%s\n", name, name)
	for _, h := range hunks(ops) {
		// Line numbers of the hunk's first line in a and in b.
		ai, bi := 0, 0
		for _, o := range ops[:h.start] {
			if o.kind != opInsert {
				ai++
			}
			if o.kind != opDelete {
				bi++
			}
		}
		an, bn := 0, 0
		for _, o := range ops[h.start:h.end] {
			if o.kind != opInsert {
				an++
			}
			if o.kind != opDelete {
				bn++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(ai, an), hunkRange(bi, bn))
		for _, o := range ops[h.start:h.end] {
			var prefix byte
			var line string
			switch o.kind {
			case opEqual:
				prefix, line = ' ', x[o.a]
			case opDelete:
				prefix, line = '-', x[o.a]
			case opInsert:
				prefix, line = '+', y[o.b]
			}
			sb.WriteByte(prefix)
			sb.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
	}
	return sb.String()
}

// hunkRange formats a hunk's start and length as diff -u does: a
// one-line range is just its line number, and an empty range names the
// line before it.
func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// splitLines splits s after each "\n"; a last line without one is kept
// as it is, so that the diff can say so.
func splitLines(s []byte) []string {
	var lines []string
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, string(s))
			break
		}
		lines = append(lines, string(s[:i+1]))
		s = s[i+1:]
	}
	return lines
}

type opKind int

const (
	opEqual opKind = iota
	opDelete
	opInsert
)

// diffOp is one line of the edit script: a is its index in the old
// lines (opEqual, opDelete), b in the new ones (opEqual, opInsert).
type diffOp struct {
	kind opKind
	a, b int
}

// diffLines returns an edit script turning x into y, deletions before
// insertions within each change.
func diffLines(x, y []string) []diffOp {
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	mx, my := x[pre:len(x)-suf], y[pre:len(y)-suf]

	// lcs[i][j] is the length of the longest common subsequence of
	// mx[i:] and my[j:].
	w := len(my) + 1
	lcs := make([]int32, (len(mx)+1)*w)
	for i := len(mx) - 1; i >= 0; i-- {
		for j := len(my) - 1; j >= 0; j-- {
			if mx[i] == my[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}

	ops := make([]diffOp, 0, len(x)+len(my))
	for i := range pre {
		ops = append(ops, diffOp{opEqual, i, i})
	}
	i, j := 0, 0
	for i < len(mx) || j < len(my) {
		switch {
		case i < len(mx) && j < len(my) && mx[i] == my[j]:
			ops = append(ops, diffOp{opEqual, pre + i, pre + j})
			i++
			j++
		case j == len(my) || (i < len(mx) && lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			ops = append(ops, diffOp{opDelete, pre + i, -1})
			i++
		default:
			ops = append(ops, diffOp{opInsert, -1, pre + j})
			j++
		}
	}
	for k := range suf {
		ops = append(ops, diffOp{opEqual, len(x) - suf + k, len(y) - suf + k})
	}
	return ops
}

// hunk is the half-open range ops[start:end] printed under one "@@" line.
type hunk struct{ start, end int }

// hunks groups the changes of ops with diffContext lines of context on
// each side, merging groups whose context would touch or overlap.
func hunks(ops []diffOp) []hunk {
	var hs []hunk
	for k, o := range ops {
		if o.kind == opEqual {
			continue
		}
		start := max(k-diffContext, 0)
		end := min(k+1+diffContext, len(ops))
		if n := len(hs); n > 0 && start <= hs[n-1].end {
			hs[n-1].end = end
			continue
		}
		hs = append(hs, hunk{start, end})
	}
	return hs
}
