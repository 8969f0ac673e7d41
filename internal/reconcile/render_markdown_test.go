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

// Every kind of call has its table, with the columns the text plan shows
// for it; the phone is masked; deferred charges and the links of what
// awaits the customer are listed.
func TestRenderMarkdownKinds(t *testing.T) {
	md := renderMarkdown(t, renderFixtures()[3].plan)
	want := "### Plan: 1 refund, 2 charges, 1 bind, 1 unbind. 1 charge deferred (insufficient balance). 2 awaiting the customer. 3 waiting. 2 up to date.\n"
	if !strings.HasPrefix(md, want) {
		t.Errorf("heading: %q, want %q", strings.SplitN(md, "\n", 2)[0], want)
	}
	for _, s := range []string{
		"| Action | Address | Payment | Amount | Reason |\n",
		"| Action | Address | Customer | Phone |\n| --- | --- | --- | --- |\n| + bind | binding.alice | cust-001 | 6281\\*\\*\\*\\*7890 |\n",
		"| Action | Address | Customer | Binding | Reason |\n| --- | --- | --- | --- | --- |\n| - unbind | unbind.bob | cust-002 | binding.bob | account closed |\n",
		"| Action | Address | Binding | Amount | Description |\n| --- | --- | --- | ---: | --- |\n" +
			"| + charge | recurring\\_charge.monthly\\#2026-11-23T09:00+07:00 | binding.carol | IDR 150,000.00 | Monthly plan |\n" +
			"| + charge (attempt 2) | recurring\\_charge.weekly\\#2026-11-16T09:00+07:00 | binding.carol | IDR 50,000.50 |  |\n",
		"#### Deferred (no payment request)\n\n- **recurring\\_charge.big\\#2026-11-23T09:00+07:00**: insufficient balance<br>",
		"- binding.erin: <https://sandbox.example/bind/confirm?ref=B_1&lang=id>\n",
		"- recurring\\_charge.dave\\_plan: binding.dave is not active yet\n",
		"- recurring\\_charge.daily\\#2026-11-23T07:00+07:00: attempt 2 after failed, not before 2026-11-23 12:00 +00:00\n",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("no %q in:\n%s", s, md)
		}
	}
	if strings.Contains(md, "0001-01-01") {
		t.Errorf("a wait with no time shows the zero time:\n%s", md)
	}
	// Tables come in plan order, the calls before what gets no call.
	order := []string{"| + refund", "| + bind", "| - unbind", "| + charge", "#### Deferred", "#### Awaiting", "#### Waiting", "#### No longer"}
	for i := 1; i < len(order); i++ {
		if strings.Index(md, order[i-1]) > strings.Index(md, order[i]) {
			t.Errorf("%q comes after %q", order[i-1], order[i])
		}
	}
}

// A link that is not a plain http(s) URL is shown as escaped text, so it
// can neither carry markup nor become a link to somewhere else.
func TestRenderMarkdownLinks(t *testing.T) {
	for _, tt := range []struct{ link, want string }{
		{"https://pay.example/c?a=1&b=x_y", "<https://pay.example/c?a=1&b=x_y>"},
		{"javascript:alert(1)", "javascript:alert(1)"},
		{"https://pay.example/a b>[x](https://evil.example)", `https://pay.example/a b\>\[x\](https://evil.example)`},
		{"https://pay.example/\n# heading", "https://pay.example/<br>\\# heading"},
	} {
		p := renderFixtures()[0].plan
		p.Awaiting = []reconcile.Awaiting{{Address: "binding.a", Link: tt.link}}
		md := renderMarkdown(t, p)
		if !strings.Contains(md, "- binding.a: "+tt.want+"\n") {
			t.Errorf("link %q: want %q in:\n%s", tt.link, tt.want, md)
		}
	}
}

func TestRenderMarkdownCollapsesEachKind(t *testing.T) {
	p := renderFixtures()[0].plan
	for i := range 11 {
		p.Actions = append(p.Actions,
			reconcile.Action{Kind: reconcile.ActionBind, Address: fmt.Sprintf("binding.b%d", i), CustomerID: "c", Phone: "6281234567890"},
			reconcile.Action{Kind: reconcile.ActionCharge, Address: fmt.Sprintf("recurring_charge.c#%d", i), Amount: 100000, Attempt: 1})
		p.Deferred = append(p.Deferred, reconcile.Problem{Address: fmt.Sprintf("recurring_charge.d#%d", i), Summary: "insufficient balance"})
		p.Awaiting = append(p.Awaiting, reconcile.Awaiting{Address: fmt.Sprintf("binding.w%d", i), Link: "https://pay.example/x"})
	}
	md := renderMarkdown(t, p)
	for _, s := range []string{
		"<details><summary>11 binds</summary>\n\n| Action | Address | Customer | Phone |",
		"<details><summary>11 charges, IDR 11,000.00</summary>\n\n| Action | Address | Binding |",
		"<details><summary>11 charges</summary>\n\n- **recurring\\_charge.d",
		"<details><summary>11 instances</summary>\n\n- binding.w0",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("no %q in:\n%s", s, md)
		}
	}
}

// A long plan of every kind is shortened under the limit: the calls shown
// are the first ones, kind after kind, and the line after them names the
// calls of each kind left out.
func TestRenderMarkdownLimitKinds(t *testing.T) {
	p := renderFixtures()[3].plan
	p.Actions = nil
	for i := range 300 {
		p.Actions = append(p.Actions, reconcile.Action{Kind: reconcile.ActionRefund, Address: fmt.Sprintf("refund.order_%05d", i),
			Payment: fmt.Sprintf("ORD-2026-%05d", i), Amount: 100000, Key: "K"})
	}
	for i := range 1000 {
		p.Actions = append(p.Actions, reconcile.Action{Kind: reconcile.ActionBind, Address: fmt.Sprintf("binding.customer_%05d", i),
			CustomerID: fmt.Sprintf("cust-%05d", i), Phone: "6281234567890"})
	}
	for i := range 1000 {
		p.Actions = append(p.Actions, reconcile.Action{Kind: reconcile.ActionCharge, Address: fmt.Sprintf("recurring_charge.plan_%05d#2026-11-23T09:00+07:00", i),
			Binding: fmt.Sprintf("binding.customer_%05d", i), Amount: 250000, Reason: "Monthly plan", Attempt: 1, Key: "K"})
	}
	md := renderMarkdown(t, p)
	if len(md) >= reconcile.MarkdownLimit {
		t.Fatalf("len=%d, want < %d", len(md), reconcile.MarkdownLimit)
	}
	if !strings.HasPrefix(md, "### Plan: 300 refunds, 1000 charges, 1000 binds. 1 charge deferred") {
		t.Errorf("heading: %q", strings.SplitN(md, "\n", 2)[0])
	}
	rows := regexp.MustCompile(`(?m)^\| [+-] (refund|bind|charge)`).FindAllStringSubmatch(md, -1)
	shown := map[string]int{}
	for _, r := range rows {
		shown[r[1]]++
	}
	if shown["refund"] != 300 || shown["bind"] == 0 || shown["bind"] == 1000 || shown["charge"] != 0 {
		t.Fatalf("rows shown: %v, want every refund, some binds, no charge", shown)
	}
	want := fmt.Sprintf("… and %d more binds, 1000 more charges (IDR 2,500,000.00) not shown; run `ddctl show PLANFILE` for all.",
		1000-shown["bind"])
	if !strings.Contains(md, want) {
		t.Errorf("no %q in:\n%s", want, md[len(md)-1500:])
	}
	if strings.Contains(md, "6281234567890") {
		t.Errorf("a phone is shown unmasked")
	}
	if !strings.Contains(md, "Not shown here: 1 deferred, 2 awaiting the customer, 3 waiting, 1 no longer in configuration.") {
		t.Errorf("other sections not named:\n%s", md[len(md)-1500:])
	}
}

// An unbind of nobody is noted in the comment as in the text plan.
func TestRenderMarkdownNoted(t *testing.T) {
	p := &reconcile.Plan{Actions: []reconcile.Action{}, Converged: 1,
		Noted: []reconcile.Problem{{Address: "unbind.bob", Summary: `no active binding of customer "cust-2" in the state: nothing to unbind`}}}
	md := renderMarkdown(t, p)
	if !strings.Contains(md, "#### Noted (no call)\n\n- unbind.bob: no active binding") {
		t.Errorf("no noted unbind in:\n%s", md)
	}
}
