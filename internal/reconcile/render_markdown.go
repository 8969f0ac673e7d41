package reconcile

import (
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/money"
)

// MarkdownLimit is the most bytes RenderMarkdown writes: GitHub refuses
// comments over 65,535 characters, and a CI wrapper may add its own lines.
// Bytes are counted, never fewer than characters.
const MarkdownLimit = 60000

// markdownCollapseAfter is how many items a list may have before it goes
// into a <details> block. Errors are never collapsed.
const markdownCollapseAfter = 10

// markdownTailReserve is room kept, when a plan is shortened, for the lines
// after the action rows (what is not shown, and the footer).
const markdownTailReserve = 1000

// RenderMarkdown writes the plan as a pull-request comment: a heading with
// the summary line, errors, a table of the calls per kind (refunds, binds,
// unbinds, charges, each with its own columns), then what is deferred, what
// awaits its customer (with the link), what waits, what is unresolved and
// what is no longer in the configuration. Phones are masked. Long lists go
// into <details> blocks. When the whole would be longer than MarkdownLimit,
// it is shortened: the heading, errors first (they are what reviewers must
// see), as many calls as fit, and a line naming how many calls of each
// kind, of what total, are not shown.
func RenderMarkdown(w io.Writer, p *Plan, opts RenderOptions) error {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	out := markdownFull(p, loc)
	if len(out) > MarkdownLimit {
		out = markdownShort(p, loc)
	}
	_, err := io.WriteString(w, out)
	return err
}

func markdownFull(p *Plan, loc *time.Location) string {
	b := &strings.Builder{}
	mdHeading(b, p)
	mdOverLimit(b, p)
	mdErrors(b, p.Errors)
	mdUnresolved(b, p)
	mdMoved(b, p)
	switch {
	case len(p.Actions) == 0 && len(p.Moved) == 0 && len(p.Errors) > 0:
		fmt.Fprintf(b, "No call planned: %s, above.\n\n", plural(len(p.Errors), "error", "errors"))
	case len(p.Actions) == 0 && len(p.Moved) == 0:
		b.WriteString("No changes. DOKU and the state match the configuration.\n\n")
	case len(p.Actions) == 0:
		b.WriteString("No call to DOKU.\n\n")
	default:
		b.WriteString("#### Calls ddctl will make\n\n")
		for _, g := range mdGroups(p.Actions) {
			open, end := mdCollapse(len(g) > markdownCollapseAfter, mdGroupSummary(g))
			b.WriteString(open)
			mdTableHead(b, g[0].Kind)
			for _, a := range g {
				b.WriteString(mdRow(a))
			}
			b.WriteString("\n")
			b.WriteString(end)
		}
	}
	mdDeferred(b, p)
	mdAwaiting(b, p)
	mdWaiting(b, p, loc)
	mdRemoved(b, p)
	mdNoted(b, p)
	mdVerified(b, p)
	mdResolved(b, p)
	if p.ReviewOnly {
		fmt.Fprintf(b, "> %s\n\n", withoutSecretsNote(p))
	}
	mdFooter(b, p, loc)
	return b.String()
}

// mdOverLimit says, before anything else, that apply will send nothing
// of a plan over settings.limits, and why.
func mdOverLimit(b *strings.Builder, p *Plan) {
	if len(p.OverLimit) == 0 {
		return
	}
	b.WriteString("> [!CAUTION]\n> **Over `settings.limits`: apply sends nothing of this plan.** If the amounts are right, apply with `-override-limits=\"REASON\"` (recorded in the history); otherwise correct the configuration.\n>\n")
	for _, l := range p.OverLimit {
		fmt.Fprintf(b, "> - %s\n", mdEscape(l.Error()))
	}
	b.WriteString("\n")
}

// mdMoved lists the moved blocks apply carries out, with no call.
func mdMoved(b *strings.Builder, p *Plan) {
	if len(p.Moved) == 0 {
		return
	}
	b.WriteString("#### Moved in the state (no call)\n\n")
	for _, m := range p.Moved {
		fmt.Fprintf(b, "- `%s` → `%s` (%s)\n", m.From, m.To, plural(m.Entries, "entry", "entries"))
	}
	b.WriteString("\n")
}

// mdVerified lists what DOKU was asked about because the state could not
// vouch for it.
func mdVerified(b *strings.Builder, p *Plan) {
	if len(p.Verified) == 0 {
		return
	}
	open, end := mdCollapse(len(p.Verified) > markdownCollapseAfter, fmt.Sprintf("Asked DOKU first (%d): the state is new or was restored", len(p.Verified)))
	if open == "" {
		b.WriteString("#### Asked DOKU first: the state is new or was restored\n\n")
	}
	b.WriteString(open)
	for _, a := range p.Verified {
		fmt.Fprintf(b, "- `%s`\n", a)
	}
	b.WriteString("\n")
	b.WriteString(end)
}

// markdownShort is the plan cut to MarkdownLimit.
func markdownShort(p *Plan, loc *time.Location) string {
	b := &strings.Builder{}
	mdHeading(b, p)
	b.WriteString("> [!NOTE]\n> This plan is too long for one comment, so it is shortened: errors first, then as many calls as fit.\n\n")
	// Errors, as many as fit while leaving room for the tail.
	budget := MarkdownLimit - markdownTailReserve
	if len(p.Errors) > 0 {
		b.WriteString("#### Errors (no call for these)\n\n")
		shown := 0
		for _, e := range p.Errors {
			item := mdProblem(e)
			if b.Len()+len(item) > budget {
				break
			}
			b.WriteString(item)
			shown++
		}
		if n := len(p.Errors) - shown; n > 0 {
			fmt.Fprintf(b, "\n… and %s not shown; run `ddctl show PLANFILE` for all.\n", plural(n, "more error", "more errors"))
		}
		b.WriteString("\n")
	}
	mdShortCalls(b, p.Actions, budget)
	var rest []string
	if n := len(p.Unresolved); n > 0 {
		rest = append(rest, fmt.Sprintf("%d unresolved", n))
	}
	if n := len(p.Deferred); n > 0 {
		rest = append(rest, fmt.Sprintf("%d deferred", n))
	}
	if n := len(p.Awaiting); n > 0 {
		rest = append(rest, fmt.Sprintf("%d awaiting the customer", n))
	}
	if n := len(p.Waiting); n > 0 {
		rest = append(rest, fmt.Sprintf("%d waiting", n))
	}
	if n := len(p.Removed); n > 0 {
		rest = append(rest, fmt.Sprintf("%d no longer in configuration", n))
	}
	if n := len(p.Resolved); n > 0 {
		rest = append(rest, plural(n, "earlier request resolved", "earlier requests resolved"))
	}
	if len(rest) > 0 {
		fmt.Fprintf(b, "Not shown here: %s.\n\n", strings.Join(rest, ", "))
	}
	mdFooter(b, p, loc)
	return b.String()
}

// mdShortCalls writes as many call tables and rows as fit in budget, kind
// after kind, and then a line naming the calls left out. A table is begun
// only when its head and first row fit.
func mdShortCalls(b *strings.Builder, actions []Action, budget int) {
	var hidden []Action
	heading := "#### Calls ddctl will make\n\n"
	for _, g := range mdGroups(actions) {
		if len(hidden) > 0 {
			hidden = append(hidden, g...)
			continue
		}
		head := &strings.Builder{}
		head.WriteString(heading)
		mdTableHead(head, g[0].Kind)
		if b.Len()+head.Len()+len(mdRow(g[0])) > budget {
			hidden = append(hidden, g...)
			continue
		}
		b.WriteString(head.String())
		heading = ""
		for i, a := range g {
			row := mdRow(a)
			if b.Len()+len(row) > budget {
				hidden = append(hidden, g[i:]...)
				break
			}
			b.WriteString(row)
		}
		b.WriteString("\n")
	}
	if len(hidden) > 0 {
		fmt.Fprintf(b, "… and %s not shown; run `ddctl show PLANFILE` for all.\n\n", mdHiddenCalls(hidden))
	}
}

// mdGroups splits actions by kind, kinds in the order they first appear
// (the order plan makes them in), actions in plan order within a kind.
func mdGroups(actions []Action) [][]Action {
	var groups [][]Action
	at := map[ActionKind]int{}
	for _, a := range actions {
		i, ok := at[a.Kind]
		if !ok {
			i = len(groups)
			at[a.Kind] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], a)
	}
	return groups
}

// mdGroupSummary names one kind's calls and, for calls that move money,
// their total: "12 refunds, IDR 12,000.00".
func mdGroupSummary(g []Action) string {
	one, many := kindNouns(g[0].Kind)
	if !movesMoney(g[0].Kind) {
		return plural(len(g), one, many)
	}
	return plural(len(g), one, many) + ", " + mdTotal(g)
}

// mdHiddenCalls names the calls a shortened plan leaves out, kind by kind:
// "9000 more refunds (IDR 9,000,000.00), 2 more binds".
func mdHiddenCalls(hidden []Action) string {
	var parts []string
	for _, g := range mdGroups(hidden) {
		one, many := kindNouns(g[0].Kind)
		s := plural(len(g), "more "+one, "more "+many)
		if movesMoney(g[0].Kind) {
			s += " (" + mdTotal(g) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func movesMoney(k ActionKind) bool { return k != ActionBind && k != ActionUnbind }

func kindNouns(k ActionKind) (one, many string) {
	return string(k), string(k) + "s"
}

func mdHeading(b *strings.Builder, p *Plan) {
	fmt.Fprintf(b, "### %s\n\n", mdEscape(Summary(p)))
}

func mdErrors(b *strings.Builder, errs []Problem) {
	if len(errs) == 0 {
		return
	}
	b.WriteString("#### Errors (no call for these)\n\n")
	for _, e := range errs {
		b.WriteString(mdProblem(e))
	}
	b.WriteString("\n")
}

// mdSection writes a titled list of lines, collapsed beyond
// markdownCollapseAfter items under a summary counting them (one, many).
func mdSection(b *strings.Builder, title, one, many string, lines []string) {
	if len(lines) == 0 {
		return
	}
	b.WriteString("#### " + title + "\n\n")
	open, end := mdCollapse(len(lines) > markdownCollapseAfter, plural(len(lines), one, many))
	b.WriteString(open)
	for _, l := range lines {
		b.WriteString(l)
	}
	b.WriteString("\n")
	b.WriteString(end)
}

func mdUnresolved(b *strings.Builder, p *Plan) {
	mdSection(b, "Unresolved (no call until DOKU says what happened)", "instance", "instances", mdProblems(p.Unresolved))
}

func mdWaiting(b *strings.Builder, p *Plan, loc *time.Location) {
	var lines []string
	for _, wt := range p.Waiting {
		when := wt.Until.In(loc).Format("2006-01-02 15:04 -07:00")
		switch {
		case wt.Until.IsZero():
			lines = append(lines, fmt.Sprintf("- %s: %s\n", mdEscape(wt.Address), mdEscape(wt.Reason)))
		case wt.Reason != "":
			lines = append(lines, fmt.Sprintf("- %s: %s, not before %s\n", mdEscape(wt.Address), mdEscape(wt.Reason), when))
		default:
			lines = append(lines, fmt.Sprintf("- %s: not before %s\n", mdEscape(wt.Address), when))
		}
	}
	mdSection(b, "Waiting (no call yet)", "instance", "instances", lines)
}

// mdDeferred lists the charges due now that the balance does not cover.
func mdDeferred(b *strings.Builder, p *Plan) {
	mdSection(b, "Deferred (no payment request)", "charge", "charges", mdProblems(p.Deferred))
}

// mdAwaiting lists the bindings and charges that wait for their customer,
// with the link the customer confirms at.
func mdAwaiting(b *strings.Builder, p *Plan) {
	var lines []string
	for _, a := range p.Awaiting {
		lines = append(lines, fmt.Sprintf("- %s: %s\n", mdEscape(a.Address), mdLink(a.Link)))
	}
	mdSection(b, "Awaiting the customer (OTP and PIN at the link)", "instance", "instances", lines)
}

func mdRemoved(b *strings.Builder, p *Plan) {
	var lines []string
	for _, addr := range p.Removed {
		lines = append(lines, fmt.Sprintf("- %s\n", mdEscape(addr)))
	}
	mdSection(b, "No longer in configuration (no call)", "instance", "instances", lines)
}

// mdNoted lists the instances that need nothing, with why.
func mdNoted(b *strings.Builder, p *Plan) {
	var lines []string
	for _, n := range p.Noted {
		lines = append(lines, fmt.Sprintf("- %s: %s\n", mdEscape(n.Address), mdEscape(n.Summary)))
	}
	mdSection(b, "Noted (no call)", "instance", "instances", lines)
}

func mdResolved(b *strings.Builder, p *Plan) {
	var lines []string
	for _, r := range p.Resolved {
		lines = append(lines, fmt.Sprintf("- %s: %s: %s\n", mdEscape(r.Address), mdEscape(string(r.Status)), mdEscape(r.Detail)))
	}
	mdSection(b, "Earlier requests", "request", "requests", lines)
}

func mdProblems(ps []Problem) []string {
	lines := make([]string, len(ps))
	for i, pr := range ps {
		lines[i] = mdProblem(pr)
	}
	return lines
}

func mdFooter(b *strings.Builder, p *Plan, loc *time.Location) {
	fmt.Fprintf(b, "<sub>Evaluated for %s; state lineage %s, serial %d.</sub>\n",
		p.At.In(loc).Format("2006-01-02 15:04 -07:00"), mdEscape(p.Lineage), p.Serial)
}

func mdProblem(pr Problem) string {
	s := "- **" + mdEscape(pr.Address) + "**: " + mdEscape(pr.Summary)
	if pr.Code != "" {
		s += " (" + mdEscape(pr.Code) + ")"
	}
	if pr.Detail != "" {
		s += "<br>" + mdEscape(pr.Detail)
	}
	return s + "\n"
}

// mdTableHead begins the table of one kind's calls. Each kind has the
// columns the text plan shows for it.
func mdTableHead(b *strings.Builder, k ActionKind) {
	switch k {
	case ActionBind:
		b.WriteString("| Action | Address | Customer | Phone |\n")
		b.WriteString("| --- | --- | --- | --- |\n")
	case ActionUnbind:
		b.WriteString("| Action | Address | Customer | Binding | Reason |\n")
		b.WriteString("| --- | --- | --- | --- | --- |\n")
	case ActionCharge:
		b.WriteString("| Action | Address | Binding | Amount | Description |\n")
		b.WriteString("| --- | --- | --- | ---: | --- |\n")
	default:
		b.WriteString("| Action | Address | Payment | Amount | Reason |\n")
		b.WriteString("| --- | --- | --- | ---: | --- |\n")
	}
}

// mdRow is one call, in the columns of mdTableHead for its kind.
func mdRow(a Action) string {
	action := "+ " + string(a.Kind)
	if a.Kind == ActionUnbind {
		action = "- " + string(a.Kind)
	}
	if a.Kind == ActionCharge && a.Attempt > 1 {
		action += fmt.Sprintf(" (attempt %d)", a.Attempt)
	}
	if a.Resend {
		action += " (again, same key)"
	}
	var cells []string
	switch a.Kind {
	case ActionBind:
		cells = []string{a.CustomerID, MaskPhone(a.Phone)}
	case ActionUnbind:
		cells = []string{a.CustomerID, a.Binding, a.Reason}
	case ActionCharge:
		cells = []string{a.Binding, a.Amount.String(), a.Reason}
	default:
		cells = []string{a.Payment, a.Amount.String(), a.Reason}
	}
	row := "| " + mdEscape(action) + " | " + mdEscape(a.Address)
	for _, c := range cells {
		row += " | " + mdEscape(c)
	}
	return row + " |\n"
}

// mdLink shows a customer's link: an autolink when it is a plain http(s)
// URL, which cannot leave its angle brackets, escaped text otherwise.
func mdLink(u string) string {
	plain := !strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == '<' || r == '>' || r == 0x7f })
	if plain && (strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) {
		return "<" + u + ">"
	}
	return mdEscape(u)
}

// mdCollapse returns what opens and closes a <details> block, or nothing
// when the list is short.
func mdCollapse(collapse bool, summary string) (open, end string) {
	if !collapse {
		return "", ""
	}
	return "<details><summary>" + mdEscape(summary) + "</summary>\n\n", "</details>\n\n"
}

// mdEscape makes text safe inside a table cell, a list item or a heading:
// markdown's punctuation is backslash-escaped (so a | cannot end a cell, a
// backtick cannot open code, a < cannot open HTML) and line breaks become
// <br>, so that text cannot leave its line.
func mdEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteString("<br>")
		case '\n':
			b.WriteString("<br>")
		case '\\', '`', '|', '*', '_', '[', ']', '<', '>', '&', '~', '$', '#', '!':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// mdTotal is the sum of the actions' amounts, as people read it. The sum of
// many large amounts can pass what an Amount holds; it is then still shown.
func mdTotal(actions []Action) string {
	sum := new(big.Int)
	for _, a := range actions {
		sum.Add(sum, big.NewInt(int64(a.Amount)))
	}
	if sum.IsInt64() {
		return money.Amount(sum.Int64()).String()
	}
	// Beyond int64: format as money.Amount.String does.
	digits := sum.String()
	sign := ""
	if digits[0] == '-' {
		sign, digits = "-", digits[1:]
	}
	intPart, frac := digits[:len(digits)-2], digits[len(digits)-2:]
	var g strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			g.WriteByte(',')
		}
		g.WriteRune(c)
	}
	return money.Currency + " " + sign + g.String() + "." + frac
}
