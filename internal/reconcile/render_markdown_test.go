package reconcile_test

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/reconcile"
)

func renderMarkdown(tb testing.TB, p *reconcile.Plan) string {
	tb.Helper()
	var buf bytes.Buffer
	if err := reconcile.RenderMarkdown(&buf, p, reconcile.RenderOptions{}); err != nil {
		tb.Fatalf("RenderMarkdown: %v", err)
	}
	return buf.String()
}

// tableRows returns the rows of the action table (not its head).
func tableRows(md string) []string {
	var rows []string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| + refund") {
			rows = append(rows, l)
		}
	}
	return rows
}

func TestRenderMarkdownEscapes(t *testing.T) {
	p := renderFixtures()[1].plan
	p.Actions = []reconcile.Action{{Kind: reconcile.ActionRefund, Address: "refund.ord_7", Payment: "ORD|7",
		Amount: 15000000, Reason: "broken | line\nsecond `code` <b>x</b>\r\nthird", Key: "K"}}
	p.Errors[0].Detail = "first line\nsecond | line"
	md := renderMarkdown(t, p)

	rows := tableRows(md)
	if len(rows) != 1 {
		t.Fatalf("%d table rows, want 1:\n%s", len(rows), md)
	}
	want := `| + refund | refund.ord\_7 | ORD\|7 | IDR 150,000.00 | broken \| line<br>second \` + "`code\\`" + ` \<b\>x\</b\><br>third |`
	if rows[0] != want {
		t.Errorf("row:\n%s\nwant:\n%s", rows[0], want)
	}
	// The row has exactly the table's cells: every other | is escaped.
	if n := len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(rows[0], -1)); n != 6 {
		t.Errorf("%d unescaped | in the row, want 6", n)
	}
	if !strings.Contains(md, "first line<br>second \\| line") {
		t.Errorf("error detail not escaped:\n%s", md)
	}
	if strings.Contains(md, "<b>") {
		t.Errorf("raw HTML from a reason reached the output:\n%s", md)
	}
}

func TestRenderMarkdownSections(t *testing.T) {
	md := renderMarkdown(t, renderFixtures()[1].plan)
	if !strings.HasPrefix(md, "### Plan: 2 refunds. 1 waiting. 1 error. 5 up to date.\n") {
		t.Errorf("heading: %q", strings.SplitN(md, "\n", 2)[0])
	}
	for _, s := range []string{"#### Errors", "#### Calls ddctl will make", "#### Waiting", "#### No longer in configuration", "IDR 25,000.50"} {
		if !strings.Contains(md, s) {
			t.Errorf("no %q in:\n%s", s, md)
		}
	}
	if strings.Index(md, "#### Errors") > strings.Index(md, "#### Calls") {
		t.Errorf("errors come after the calls")
	}
	if strings.Contains(md, "<details>") {
		t.Errorf("short lists are collapsed")
	}
}

func TestRenderMarkdownCollapsesLongLists(t *testing.T) {
	p := renderFixtures()[0].plan
	for i := range 12 {
		p.Actions = append(p.Actions, reconcile.Action{Kind: reconcile.ActionRefund,
			Address: fmt.Sprintf("refund.r%d", i), Payment: fmt.Sprintf("ORD-%d", i), Amount: 100000, Key: "K"})
		p.Removed = append(p.Removed, fmt.Sprintf("refund.old%d", i))
	}
	md := renderMarkdown(t, p)
	if !strings.Contains(md, "<details><summary>12 refunds, IDR 12,000.00</summary>\n\n| Action |") {
		t.Errorf("actions not collapsed:\n%s", md)
	}
	if strings.Count(md, "<details>") != 2 || strings.Count(md, "</details>") != 2 {
		t.Errorf("want 2 <details> blocks:\n%s", md)
	}
}

func TestRenderMarkdownLimit(t *testing.T) {
	p := renderFixtures()[1].plan
	p.Actions = nil
	var total money.Amount
	for i := range 10000 {
		a := reconcile.Action{Kind: reconcile.ActionRefund, Address: fmt.Sprintf("refund.order_%05d", i),
			Payment: fmt.Sprintf("ORD-2026-%05d", i), Amount: money.Amount(100000 + i), Reason: "customer cancelled",
			Key: fmt.Sprintf("TEST%032X", i)}
		p.Actions = append(p.Actions, a)
		total += a.Amount
	}
	md := renderMarkdown(t, p)
	if len(md) >= reconcile.MarkdownLimit || utf8.RuneCountInString(md) >= reconcile.MarkdownLimit {
		t.Fatalf("len=%d bytes, %d characters; want < %d", len(md), utf8.RuneCountInString(md), reconcile.MarkdownLimit)
	}
	if !strings.HasPrefix(md, "### Plan: 10000 refunds. 1 waiting. 1 error. 5 up to date.\n") {
		t.Errorf("heading: %q", strings.SplitN(md, "\n", 2)[0])
	}
	// Errors come first, whole.
	if i, j := strings.Index(md, "refund.ord\\_10"), strings.Index(md, "| + refund"); i < 0 || j < 0 || i > j {
		t.Errorf("error at %d, first row at %d: the error must come first", i, j)
	}
	rows := tableRows(md)
	if len(rows) < 100 {
		t.Errorf("only %d rows shown", len(rows))
	}
	m := regexp.MustCompile("… and ([0-9]+) more refunds \\((IDR [0-9,.]+)\\) not shown; run `ddctl show PLANFILE` for all").FindStringSubmatch(md)
	if m == nil {
		t.Fatalf("no line naming the hidden refunds:\n%s", md[len(md)-2000:])
	}
	hidden, _ := strconv.Atoi(m[1])
	if hidden+len(rows) != 10000 {
		t.Errorf("%d shown + %d hidden, want 10000", len(rows), hidden)
	}
	var hiddenTotal money.Amount
	for _, a := range p.Actions[len(rows):] {
		hiddenTotal += a.Amount
	}
	if m[2] != hiddenTotal.String() {
		t.Errorf("hidden total %s, want %s (all: %s)", m[2], hiddenTotal, total)
	}
	// The rows shown are the first ones, in plan order.
	if !strings.Contains(rows[0], "refund.order\\_00000") || !strings.Contains(rows[len(rows)-1], fmt.Sprintf("refund.order\\_%05d", len(rows)-1)) {
		t.Errorf("rows shown are not the first %d: %s … %s", len(rows), rows[0], rows[len(rows)-1])
	}
	if !strings.Contains(md, "Not shown here: 1 waiting, 1 no longer in configuration.") {
		t.Errorf("other sections not named")
	}
}

func TestRenderMarkdownLimitManyErrors(t *testing.T) {
	p := renderFixtures()[1].plan
	p.Errors = nil
	for i := range 2000 {
		p.Errors = append(p.Errors, reconcile.Problem{Address: fmt.Sprintf("refund.bad_%04d", i),
			Summary: "refund exceeds what is left", Detail: strings.Repeat("detail ", 10)})
	}
	md := renderMarkdown(t, p)
	if len(md) >= reconcile.MarkdownLimit {
		t.Fatalf("len=%d, want < %d", len(md), reconcile.MarkdownLimit)
	}
	if !regexp.MustCompile(`… and [0-9]+ more errors not shown`).MatchString(md) {
		t.Errorf("hidden errors not named")
	}
	if !strings.Contains(md, "… and 2 more refunds (IDR 175,000.50) not shown") {
		t.Errorf("hidden refunds not named:\n%s", md[len(md)-1000:])
	}
}
