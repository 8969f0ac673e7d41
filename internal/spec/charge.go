package spec

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/ddctl/ddctl/internal/money"
)

// CatchUp says what the planner does with occurrences of a recurring
// charge that were missed (the daemon was down, the charge was added with a
// start in the past).
type CatchUp string

// The values of recurring_charge.catch_up.
const (
	CatchUpAll    CatchUp = "all"    // charge every missed occurrence
	CatchUpLatest CatchUp = "latest" // charge only the latest missed occurrence (the default)
	CatchUpNone   CatchUp = "none"   // charge no missed occurrence, only those due from now on
)

// String returns the value as written in HCL.
func (c CatchUp) String() string { return string(c) }

// Retry is the retry block of a recurring charge: how often one occurrence
// is attempted after insufficient balance or no customer confirmation.
// The zero value is invalid; a charge without a retry block has
// Retry{Attempts: 1} (no retry).
type Retry struct {
	Attempts int           // attempts per occurrence, 1-10; 1 means no retry
	Every    time.Duration // time between attempts, at least a minute; 0 when there is no retry block
}

// DefaultCatchUpGrace is a recurring charge's catch_up_grace when it has
// none: an occurrence an hour late, with the next one not yet due, is
// still charged as due whatever catch_up says.
const DefaultCatchUpGrace = time.Hour

// Missed reports whether the occurrence at, of a charge that nothing was
// sent for, is missed at now (catch_up decides whether a missed
// occurrence is charged): its next occurrence is due by now, or more
// than CatchUpGrace has passed since it. The zero grace is
// DefaultCatchUpGrace.
func (c Charge) Missed(at, now time.Time, loc *time.Location) bool {
	if now.Sub(at) > c.Grace() {
		return true
	}
	next, ok := c.nextOccurrence(at.Add(time.Nanosecond), loc)
	return ok && !now.Before(next)
}

// Grace is CatchUpGrace, or DefaultCatchUpGrace when it is not set.
func (c Charge) Grace() time.Duration {
	if c.CatchUpGrace <= 0 {
		return DefaultCatchUpGrace
	}
	return c.CatchUpGrace
}

// Limits of recurring charge fields.
const (
	minCatchUpGrace      = time.Minute
	maxDescriptionLength = 40 // DOKU: additionalInfo.remarks ≤ 40
	MaxRetryAttempts     = 10 // retry.attempts at most; also how many keys an occurrence may have used
	minRetryEvery        = time.Minute
)

// Charge is a recurring charge that should happen on a schedule: a
// recurring_charge block, or one instance of one with for_each.
type Charge struct {
	Address     string       // recurring_charge.NAME, or with for_each recurring_charge.NAME["KEY"]
	Name        string       // the block's name
	Key         string       // for_each key; "" without for_each
	Binding     string       // the address of the binding charged, such as binding.alice or binding.team["x"]
	Amount      money.Amount // > 0
	Schedule    string       // 5-field cron expression (or @daily and the like), in Settings.Location; see Occurrences
	Start       time.Time    // first instant an occurrence may have; never zero in a loaded Config
	End         time.Time    // last instant an occurrence may have (inclusive); zero when open-ended
	Description string       // at most 40 characters (Allo's remarks); may be empty
	CatchUp     CatchUp      // default CatchUpLatest
	// CatchUpGrace is how long after its time an occurrence that nothing
	// was sent for is still due rather than missed, unless the next
	// occurrence is due first (see Missed). Default DefaultCatchUpGrace.
	CatchUpGrace time.Duration
	Retry        Retry     // default Retry{Attempts: 1}
	DeclRange    hcl.Range // the block's header, the same for every instance
}

var chargeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "for_each"},
		{Name: "binding", Required: true},
		{Name: "amount", Required: true},
		{Name: "currency"},
		{Name: "schedule", Required: true},
		{Name: "start", Required: true},
		{Name: "end"},
		{Name: "description"},
		{Name: "catch_up"},
		{Name: "catch_up_grace"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "retry"}},
}

var retrySchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "attempts", Required: true},
		{Name: "every", Required: true},
	},
}

// decodeCharge decodes a recurring_charge block into its instances, records
// the block in l.charges and each instance decoded without error in
// l.decoded, for refunds that name an occurrence. Dates without a time are
// midnight in loc, where the schedule runs.
func (l *loader) decodeCharge(b *hcl.Block, ctx *hcl.EvalContext, loc *time.Location) []Charge {
	content, diags := b.Body.Content(chargeSchema)
	l.diags = append(l.diags, diags...)
	attrs := content.Attributes
	name := b.Labels[0]

	// The retry block is the same for every instance.
	var retryBlock *hcl.Block
	for _, rb := range content.Blocks {
		if retryBlock != nil {
			l.duplicate(rb, retryBlock, "retry", "A recurring_charge has at most one retry block; merge the two.")
			continue
		}
		retryBlock = rb
	}
	var retryAttrs hcl.Attributes
	if retryBlock != nil {
		rc, diags := retryBlock.Body.Content(retrySchema)
		l.diags = append(l.diags, diags...)
		retryAttrs = rc.Attributes
	}

	return forInstances(l, b, attrs["for_each"], ctx, l.charges, func(sc scope, key string) (Charge, bool) {
		c := Charge{
			Address:   instanceAddress(b.Type, name, key),
			Name:      name,
			Key:       key,
			CatchUp:   CatchUpLatest,
			Retry:     Retry{Attempts: 1},
			DeclRange: b.DefRange,

			CatchUpGrace: DefaultCatchUpGrace,
		}
		before := len(l.diags.Errs())

		c.Binding = l.bindingRef(sc, attrs["binding"])

		if attr := attrs["amount"]; attr != nil {
			c.Amount = l.amount(sc, attr)
			if c.Amount == 0 && len(l.diags.Errs()) == before {
				// amount = null: a charge has no "full amount" to default to.
				l.errorf(attr.Expr.Range().Ptr(), "Missing required argument",
					"%sThe argument \"amount\" is required, but its value is null.", sc.prefix())
			}
		}
		l.currency(sc, attrs["currency"])

		var sched scheduleSpec
		if s, ok := l.str(sc, attrs["schedule"], true); ok {
			parsed, err := parseSchedule(s)
			if err != nil {
				l.errorf(attrs["schedule"].Expr.Range().Ptr(), "Invalid schedule",
					"%sschedule %q is not a valid cron expression: %s. Write five fields, minute hour day-of-month month day-of-week, such as \"0 9 1 * *\" (09:00 on the 1st of every month, in settings.timezone).",
					sc.prefix(), s, err)
			} else {
				c.Schedule, sched = s, parsed
			}
		}

		c.Start = l.timestamp(sc, attrs["start"], true, loc)
		c.End = l.timestamp(sc, attrs["end"], false, loc)
		if !c.Start.IsZero() && !c.End.IsZero() && c.End.Before(c.Start) {
			l.errorf(attrs["end"].Expr.Range().Ptr(), "End before start",
				"%send (%s) is before start (%s), so the charge would never happen. Correct one of them.",
				sc.prefix(), c.End.In(loc).Format(time.RFC3339), c.Start.In(loc).Format(time.RFC3339))
		}
		if sched.spec != nil && !c.Start.IsZero() {
			if first := sched.next(c.Start.Add(-time.Nanosecond), loc); first.IsZero() {
				l.errorf(attrs["schedule"].Expr.Range().Ptr(), "Invalid schedule",
					"%sschedule %q never fires within five years after start (a day that does not exist, such as the 30th of February?).", sc.prefix(), c.Schedule)
			}
		}

		if s, ok := l.str(sc, attrs["description"], false); ok {
			if n := utf8.RuneCountInString(s); n > maxDescriptionLength {
				l.errorf(attrs["description"].Expr.Range().Ptr(), "Invalid description",
					"%sdescription is %d characters long; Allo Bank takes at most %d (it is sent as the payment's remarks).", sc.prefix(), n, maxDescriptionLength)
			} else {
				c.Description = s
			}
		}

		if s, ok := l.str(sc, attrs["catch_up"], false); ok {
			switch cu := CatchUp(s); cu {
			case CatchUpAll, CatchUpLatest, CatchUpNone:
				c.CatchUp = cu
			default:
				l.errorf(attrs["catch_up"].Expr.Range().Ptr(), "Invalid catch_up",
					"%scatch_up is %q, but it must be %q (charge every missed occurrence), %q (only the latest) or %q (none).%s",
					sc.prefix(), s, CatchUpAll, CatchUpLatest, CatchUpNone, suggestion(s, []string{string(CatchUpAll), string(CatchUpLatest), string(CatchUpNone)}))
			}
		}

		if s, ok := l.str(sc, attrs["catch_up_grace"], false); ok {
			d, err := time.ParseDuration(s)
			if err != nil || d < minCatchUpGrace {
				l.errorf(attrs["catch_up_grace"].Expr.Range().Ptr(), "Invalid catch_up_grace",
					"%scatch_up_grace is how late an occurrence may still be charged as due rather than missed: a duration of at least one minute, such as \"30m\" or \"6h\" (units h, m, s); got %q.", sc.prefix(), s)
			} else {
				c.CatchUpGrace = d
			}
		}

		if retryBlock != nil {
			c.Retry = l.retry(sc, retryAttrs)
		}
		ok := len(l.diags.Errs()) == before
		if ok {
			l.decoded[c.Address] = c
		}
		return c, ok
	})
}

// retry evaluates the attributes of a retry block.
func (l *loader) retry(sc scope, attrs hcl.Attributes) Retry {
	r := Retry{Attempts: 1}
	if attr := attrs["attempts"]; attr != nil {
		if v, ok := l.value(sc, attr, false); ok && !l.null(sc, attr, v, true) {
			n, err := convert.Convert(v, cty.Number)
			var attempts int64 = -1
			if err == nil {
				if bf := n.AsBigFloat(); bf.IsInt() {
					if i, acc := bf.Int64(); acc == 0 {
						attempts = i
					}
				}
			}
			if attempts < 1 || attempts > MaxRetryAttempts {
				l.errorf(attr.Expr.Range().Ptr(), "Invalid retry attempts",
					"%sattempts is the number of attempts per occurrence, counting the first: a whole number from 1 (no retry) to %d.", sc.prefix(), MaxRetryAttempts)
			} else {
				r.Attempts = int(attempts)
			}
		}
	}
	if s, ok := l.str(sc, attrs["every"], true); ok {
		d, err := time.ParseDuration(s)
		if err != nil || d < minRetryEvery {
			l.errorf(attrs["every"].Expr.Range().Ptr(), "Invalid retry interval",
				"%severy is the time between two attempts of an occurrence: a duration of at least one minute, such as \"30m\", \"24h\" or \"36h\" (units h, m, s); got %q.", sc.prefix(), s)
		} else {
			r.Every = d
		}
	}
	return r
}

// currency checks an optional currency attribute: only IDR.
func (l *loader) currency(sc scope, attr *hcl.Attribute) {
	if c, ok := l.str(sc, attr, false); ok && c != money.Currency {
		l.errorf(attr.Expr.Range().Ptr(), "Unsupported currency",
			"%scurrency is %q, but Allo Bank direct debit only takes %s. Remove currency or set it to %q.", sc.prefix(), c, money.Currency, money.Currency)
	}
}

// timestamp evaluates a timestamp attribute: RFC 3339, or a date meaning
// midnight in loc. It returns the zero time when attr is absent, null or in
// error (reported).
func (l *loader) timestamp(sc scope, attr *hcl.Attribute, required bool, loc *time.Location) time.Time {
	s, ok := l.str(sc, attr, required)
	if !ok {
		return time.Time{}
	}
	t, err := parseTimestamp(s, loc)
	if err != nil {
		l.errorf(attr.Expr.Range().Ptr(), "Invalid timestamp",
			"%s%s is %q, which is neither an RFC 3339 timestamp such as \"2026-12-05T02:00:00+07:00\" nor a date such as \"2026-12-05\" (midnight in settings.timezone).", sc.prefix(), attr.Name, s)
		return time.Time{}
	}
	return t
}

// bindingRef resolves a charge's binding attribute, a reference written
// binding.NAME or binding.NAME[KEY] (KEY any expression, such as each.key
// or each.value.who), to the address of a declared binding instance. It
// returns "" after reporting an error, and also, silently, when the
// binding's own errors make its instances unknown.
//
// The reference is resolved from the expression's syntax rather than by
// evaluating it, so that a typo gets "did you mean" and the binding's
// address, not a copy of its fields, is what the charge keeps.
func (l *loader) bindingRef(sc scope, attr *hcl.Attribute) string {
	if attr == nil {
		return ""
	}
	invalid := func(detail string, args ...any) string {
		l.errorf(attr.Expr.Range().Ptr(), "Invalid binding reference", sc.prefix()+detail, args...)
		return ""
	}
	expr := attr.Expr
	for {
		p, ok := expr.(*hclsyntax.ParenthesesExpr)
		if !ok {
			break
		}
		expr = p.Expression
	}

	// Split the expression into the binding's name and, if any, its key.
	var name string
	var nameRange hcl.Range
	var keyExpr hcl.Expression // a computed key
	var key *string            // a literal key
	traversalOf := func(e hcl.Expression) hcl.Traversal {
		if st, ok := e.(*hclsyntax.ScopeTraversalExpr); ok && st.Traversal.RootName() == "binding" {
			return st.Traversal
		}
		return nil
	}
	tr := traversalOf(expr)
	if ix, ok := expr.(*hclsyntax.IndexExpr); ok {
		if tr = traversalOf(ix.Collection); len(tr) == 2 {
			keyExpr = ix.Key
		} else {
			tr = nil
		}
	}
	if len(tr) < 2 || len(tr) > 3 {
		return invalid("binding must refer to a binding block, such as binding.alice, or to one instance of a binding with for_each, such as binding.team[\"x\"] or binding.team[each.key].")
	}
	step, ok := tr[1].(hcl.TraverseAttr)
	if !ok {
		return invalid("binding must refer to a binding by name, such as binding.alice.")
	}
	name, nameRange = step.Name, step.SrcRange
	if len(tr) == 3 {
		ix, ok := tr[2].(hcl.TraverseIndex)
		if !ok {
			return invalid("binding.%s.%s is not a binding: refer to the binding itself, such as binding.%s, or to an instance, binding.%s[\"KEY\"].", name, attrName(tr[2]), name, name)
		}
		k, err := convert.Convert(ix.Key, cty.String)
		if err != nil || k.IsNull() || !k.IsKnown() {
			return invalid("The key of binding.%s must be a string.", name)
		}
		s := k.AsString()
		key = &s
	}

	d := l.bindings[name]
	if d == nil {
		names := make([]string, 0, len(l.bindings))
		for n := range l.bindings {
			names = append(names, n)
		}
		slices.Sort(names)
		detail := fmt.Sprintf("%sThere is no binding named %q in the configuration.%s", sc.prefix(), name, suggestion(name, names))
		if l.unbinds[name] != nil {
			detail += fmt.Sprintf(" unbind.%s removes a binding; a charge needs a binding block.", name)
		}
		l.errorf(nameRange.Ptr(), "Reference to undeclared binding", "%s", detail)
		return ""
	}

	if keyExpr != nil {
		v, ok := l.value(sc, &hcl.Attribute{Name: "the binding key", Expr: keyExpr, Range: keyExpr.Range(), NameRange: keyExpr.Range()}, false)
		if !ok {
			return ""
		}
		if v.IsNull() {
			return invalid("The key of binding.%s is null.", name)
		}
		k, err := convert.Convert(v, cty.String)
		if err != nil {
			return invalid("The key of binding.%s must be a string, but it is %s.", name, friendly(v))
		}
		s := k.AsString()
		key = &s
	}

	switch {
	case d.forEach && key == nil:
		return invalid("binding.%s has for_each, so name one of its instances, such as binding.%s[\"KEY\"] or binding.%s[each.key].", name, name, name)
	case !d.forEach && key != nil:
		return invalid("binding.%s has no for_each, so it takes no key: write binding.%s.", name, name)
	case key == nil:
		return instanceAddress("binding", name, "")
	case !d.known:
		return "" // the binding's for_each is in error, reported there
	case !d.keys[*key]:
		keys := make([]string, 0, len(d.keys))
		for k := range d.keys {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		l.errorf(attr.Expr.Range().Ptr(), "Reference to undeclared binding",
			"%sbinding.%s has no instance with the key %q.%s", sc.prefix(), name, *key, suggestion(*key, keys))
		return ""
	}
	return instanceAddress("binding", name, *key)
}

// attrName names a traversal step for a diagnostic.
func attrName(step hcl.Traverser) string {
	if a, ok := step.(hcl.TraverseAttr); ok {
		return a.Name
	}
	return strings.TrimSpace(fmt.Sprintf("%T", step))
}
