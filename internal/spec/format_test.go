package spec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const messyHCL = `# the refunds
refund "one"   {
payment="INV-1"   # order 1
    amount  =   "150000"
  reason = "item damaged"
}

refund "two" {
	payment = "INV-2"
}   
`

const canonicalHCL = `# the refunds
refund "one" {
  payment = "INV-1" # order 1
  amount  = "150000"
  reason  = "item damaged"
}

refund "two" {
  payment = "INV-2"
}
`

func TestFormat(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		got, diags := Format([]byte(messyHCL), "main.hcl")
		if diags.HasErrors() {
			t.Fatalf("Format: %v", diags)
		}
		if diff := cmp.Diff(canonicalHCL, string(got)); diff != "" {
			t.Fatalf("Format mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		for name, src := range map[string]string{"messy": messyHCL, "canonical": canonicalHCL} {
			once, diags := Format([]byte(src), "main.hcl")
			if diags.HasErrors() {
				t.Fatalf("%s: Format: %v", name, diags)
			}
			twice, diags := Format(once, "main.hcl")
			if diags.HasErrors() {
				t.Fatalf("%s: Format(Format): %v", name, diags)
			}
			if diff := cmp.Diff(string(once), string(twice)); diff != "" {
				t.Fatalf("%s: Format(Format(x)) != Format(x) (-once +twice):\n%s", name, diff)
			}
		}
	})

	t.Run("ErrSyntax", func(t *testing.T) {
		src := "refund \"one\" {\n  payment = \"INV-1\"\n  amount = \n}\n"
		got, diags := Format([]byte(src), "broken.hcl")
		if got != nil {
			t.Fatalf("Format=%q, want nil", got)
		}
		if !diags.HasErrors() {
			t.Fatalf("Format: no error diagnostic")
		}
		r := diags[0].Subject
		if r == nil || r.Filename != "broken.hcl" || r.Start.Line != 3 {
			t.Fatalf("Subject=%v, want broken.hcl line 3", r)
		}
	})
}

func TestUnifiedDiff(t *testing.T) {
	for _, tt := range []struct {
		name string
		a, b string
		want string
	}{
		{name: "Equal", a: "x\ny\n", b: "x\ny\n", want: ""},
		{
			name: "OneHunk",
			a:    "a\nb\nc\nd\ne\nf\ng\nh\n",
			b:    "a\nb\nc\nD\ne\nf\ng\nh\n",
			want: "--- a/main.hcl\n+++ b/main.hcl\n" +
				"@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n",
		},
		{
			name: "TwoHunks",
			a:    "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n",
			b:    "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n12\n",
			want: "--- a/main.hcl\n+++ b/main.hcl\n" +
				"@@ -1,3 +1,4 @@\n+0\n 1\n 2\n 3\n" +
				"@@ -8,5 +9,4 @@\n 8\n 9\n 10\n-11\n 12\n",
		},
		{
			name: "MergedHunk",
			a:    "1\n2\n3\n4\n5\n6\n7\n8\n",
			b:    "1\nTWO\n3\n4\n5\n6\n7\nEIGHT\n",
			want: "--- a/main.hcl\n+++ b/main.hcl\n" +
				"@@ -1,8 +1,8 @@\n 1\n-2\n+TWO\n 3\n 4\n 5\n 6\n 7\n-8\n+EIGHT\n",
		},
		{
			name: "SevenLinesApart",
			a:    "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n",
			b:    "1\nTWO\n3\n4\n5\n6\n7\n8\n9\nTEN\n",
			want: "--- a/main.hcl\n+++ b/main.hcl\n" +
				"@@ -1,5 +1,5 @@\n 1\n-2\n+TWO\n 3\n 4\n 5\n" +
				"@@ -7,4 +7,4 @@\n 7\n 8\n 9\n-10\n+TEN\n",
		},
		{
			name: "NoNewlineAtEOF",
			a:    "x\ny",
			b:    "x\ny\n",
			want: "--- a/main.hcl\n+++ b/main.hcl\n" +
				"@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+y\n",
		},
		{
			name: "Format",
			a:    "refund \"one\" {\npayment=\"INV-1\"\n}\n",
			b:    "refund \"one\" {\n  payment = \"INV-1\"\n}\n",
			want: "--- a/main.hcl\n+++ b/main.hcl\n" +
				"@@ -1,3 +1,3 @@\n refund \"one\" {\n-payment=\"INV-1\"\n+  payment = \"INV-1\"\n }\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := UnifiedDiff("main.hcl", []byte(tt.a), []byte(tt.b))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("UnifiedDiff mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
