package spec

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/ddctl/ddctl/internal/money"
)

// Limits of refund fields.
const (
	maxPaymentLength = 64
	maxReasonLength  = 255
)

// Refund is one refund that should exist: a refund block, or one instance
// of a refund block with for_each.
type Refund struct {
	Address   string       // refund.NAME, or with for_each refund.NAME["KEY"] (key quoted with strconv.Quote)
	Name      string       // the block's name
	Key       string       // for_each key; "" without for_each
	Payment   string       // the original payment's partnerReferenceNo: 1-64 characters; "" when Charge is set
	Amount    money.Amount // > 0; 0 means the full paid amount (amount omitted)
	Reason    string       // at most 255 characters; may be empty
	NotBefore time.Time    // the refund is not made before this instant; zero when not scheduled
	DeclRange hcl.Range    // the block's header, the same for every instance

	// Binding is the address of the payer's binding (binding.alice), whose
	// customer token DOKU requires on every refund (docs/doku.md#refund).
	// A refund of a charge occurrence may leave it "": the binding the
	// occurrence was paid through is used. When set there, it must be the
	// charge's binding.
	Binding string

	// When payment names an occurrence of a recurring charge
	// (recurring_charge.gym#2026-12-01T09:00+07:00): the charge's address,
	// and the occurrence, one of the charge's Occurrences, in
	// Settings.Location. Amount is then at most the charge's amount. Both
	// are zero when payment is a partnerReferenceNo.
	Charge     string
	Occurrence time.Time
}

var refundSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "for_each"},
		{Name: "payment", Required: true},
		{Name: "amount"},
		{Name: "currency"},
		{Name: "reason"},
		{Name: "not_before"},
		{Name: "binding"},
	},
}

// decodeRefund decodes a refund block into its instances: one, or one per
// for_each key. Dates without a time are midnight in loc. A payment that
// names a charge occurrence is checked against the charges decoded before.
func (l *loader) decodeRefund(b *hcl.Block, ctx *hcl.EvalContext, loc *time.Location) []Refund {
	content, diags := b.Body.Content(refundSchema)
	l.diags = append(l.diags, diags...)
	attrs := content.Attributes
	name := b.Labels[0]
	return forInstances(l, b, attrs["for_each"], ctx, l.refunds, func(sc scope, key string) (Refund, bool) {
		r, ok := l.decodeRefundInstance(sc, attrs, loc)
		r.Address, r.Name, r.Key, r.DeclRange = instanceAddress(b.Type, name, key), name, key, b.DefRange
		return r, ok
	})
}

// decodeRefundInstance evaluates the attributes of one refund instance. ok
// is false when any of them is in error.
func (l *loader) decodeRefundInstance(sc scope, attrs hcl.Attributes, loc *time.Location) (r Refund, ok bool) {
	before := len(l.diags.Errs())

	var charge *Charge
	if p, ok := l.str(sc, attrs["payment"], true); ok {
		switch n := utf8.RuneCountInString(p); {
		case strings.HasPrefix(p, chargePrefix):
			charge = l.chargeOccurrence(sc, attrs["payment"], p, loc, &r)
		case n == 0:
			l.errorf(attrs["payment"].Expr.Range().Ptr(), "Invalid payment",
				"%spayment must be the partnerReferenceNo of the payment to refund, not an empty string.", sc.prefix())
		case n > maxPaymentLength:
			l.errorf(attrs["payment"].Expr.Range().Ptr(), "Invalid payment",
				"%spayment is %d characters long; a partnerReferenceNo has at most %d.", sc.prefix(), n, maxPaymentLength)
		default:
			r.Payment = p
		}
	}

	if attr := attrs["amount"]; attr != nil {
		r.Amount = l.amount(sc, attr)
		if charge != nil && r.Amount > charge.Amount {
			l.errorf(attr.Expr.Range().Ptr(), "Refund larger than its charge",
				"%sThe refund is %s, but %s charges %s per occurrence. Refund at most the charged amount, or omit amount to refund all of it.",
				sc.prefix(), r.Amount, charge.Address, charge.Amount)
		}
	}

	l.currency(sc, attrs["currency"])

	if reason, ok := l.str(sc, attrs["reason"], false); ok {
		if n := utf8.RuneCountInString(reason); n > maxReasonLength {
			l.errorf(attrs["reason"].Expr.Range().Ptr(), "Invalid reason",
				"%sreason is %d characters long; DOKU takes at most %d.", sc.prefix(), n, maxReasonLength)
		} else {
			r.Reason = reason
		}
	}

	r.NotBefore = l.timestamp(sc, attrs["not_before"], false, loc)

	if attr := attrs["binding"]; attr != nil {
		r.Binding = l.bindingRef(sc, attr)
		if charge != nil && r.Binding != "" && r.Binding != charge.Binding {
			l.errorf(attr.Expr.Range().Ptr(), "Binding is not the charge's",
				"%sThe refund names %s, but %s charges %s: a refund goes to the customer who paid. Omit binding to use the charge's.",
				sc.prefix(), r.Binding, charge.Address, charge.Binding)
		}
	}

	return r, len(l.diags.Errs()) == before
}

// chargeOccurrence resolves a payment that names a charge occurrence,
// filling r.Charge and r.Occurrence. It returns the charge when the
// occurrence is one of its occurrences, and nil after reporting an error,
// or silently when the charge's own errors make it unknown.
func (l *loader) chargeOccurrence(sc scope, attr *hcl.Attribute, p string, loc *time.Location, r *Refund) *Charge {
	rng := attr.Expr.Range().Ptr()
	chargeAddr, at, err := ParseOccurrenceAddress(p)
	if err != nil {
		l.errorf(rng, "Invalid payment",
			"%spayment %q looks like the address of a charge occurrence, but %s. Write it like recurring_charge.gym#2026-12-01T09:00+07:00, or with a key recurring_charge.gym[\"alice\"]#2026-12-01T09:00+07:00.",
			sc.prefix(), p, err)
		return nil
	}
	c, ok := l.decoded[chargeAddr]
	if !ok {
		name, key := chargeAddr[len(chargePrefix):], ""
		if i := strings.IndexByte(name, '['); i >= 0 {
			key, _ = strconv.Unquote(name[i+1 : len(name)-1])
			name = name[:i]
		}
		if d := l.charges[name]; d != nil && (!d.known || d.keys[key] && d.forEach == (key != "")) {
			return nil // the charge is declared but in error, reported there
		}
		var addrs []string
		for _, d := range l.charges {
			for k := range d.keys {
				addrs = append(addrs, instanceAddress("recurring_charge", d.block.Labels[0], k))
			}
		}
		slices.Sort(addrs)
		l.errorf(rng, "Reference to undeclared recurring charge",
			"%spayment names an occurrence of %s, but the configuration has no such recurring charge.%s", sc.prefix(), chargeAddr, suggestion(chargeAddr, addrs))
		return nil
	}
	if !c.isOccurrence(at, loc) {
		detail := fmt.Sprintf("%s%s is not an occurrence of %s (schedule %q in %s, from %s",
			sc.prefix(), OccurrenceAddress(chargeAddr, at, loc), chargeAddr, c.Schedule, loc, c.Start.In(loc).Format(OccurrenceLayout))
		if !c.End.IsZero() {
			detail += " to " + c.End.In(loc).Format(OccurrenceLayout)
		}
		detail += ")."
		if next, ok := c.nextOccurrence(at, loc); ok {
			detail += " The next occurrence is " + OccurrenceAddress(chargeAddr, next, loc) + "."
		}
		l.errorf(rng, "Unknown charge occurrence", "%s", detail)
		return nil
	}
	r.Charge, r.Occurrence = chargeAddr, at.In(loc)
	return &c
}

// parseTimestamp reads an RFC 3339 timestamp, or a date meaning midnight
// in loc.
func parseTimestamp(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation(time.DateOnly, s, loc)
}

// amount evaluates an amount attribute: a number, or a decimal string. It
// returns 0 (the full paid amount) when the value is null, and reports every
// value that is not a positive IDR amount of at most two decimals.
func (l *loader) amount(sc scope, attr *hcl.Attribute) money.Amount {
	v, ok := l.value(sc, attr, false)
	if !ok || v.IsNull() {
		return 0
	}
	invalid := func(format string, args ...any) {
		l.errorf(attr.Expr.Range().Ptr(), "Invalid amount", sc.prefix()+format, args...)
	}

	var text string
	var err error
	switch v.Type() {
	case cty.Number:
		// Formatting the exact big.Float keeps every digit the operator
		// wrote; a float64 would not. Huge or tiny exponents are decided
		// before their digits are written out.
		f := v.AsBigFloat()
		exp := f.MantExp(nil) // 2^(exp-1) <= |f| < 2^exp
		switch {
		case f.IsInf():
			err = money.ErrTooLarge
		case f.Sign() < 0:
			err = money.ErrNegative
		case exp > 64:
			err = money.ErrTooLarge
		case f.Sign() != 0 && exp < -64:
			err = money.ErrDecimals
		case f.IsInt(): // the common case, and much cheaper than shortest formatting
			i, _ := f.Int64()
			text = strconv.FormatInt(i, 10)
		default:
			text = f.Text('f', -1)
		}
	case cty.String:
		text = v.AsString()
	default:
		invalid("The amount must be a number or a decimal string such as \"150000.00\", but it is %s.", friendly(v))
		return 0
	}

	var a money.Amount
	if err == nil {
		a, err = money.Parse(text)
	}
	switch {
	case err == nil && a == 0:
		invalid("The amount must be greater than zero. To refund the full paid amount, omit amount (or make it null).")
	case errors.Is(err, money.ErrNegative):
		invalid("The amount must be greater than zero, but it is negative.")
	case errors.Is(err, money.ErrDecimals):
		invalid("The amount has more than two decimals; IDR amounts are counted in sen, 1/100 of a rupiah.")
	case errors.Is(err, money.ErrTooLarge):
		invalid("The amount has more than 16 integer digits; the largest amount DOKU can carry is %s.", money.MaxAmount.Value())
	case err != nil:
		if text == "" {
			invalid("The amount is an empty string. Write a decimal number such as 150000 or \"150000.00\", or make it null to refund the full paid amount.")
		} else {
			invalid("The amount %q is not a decimal number. Write it like 150000 or \"150000.00\": digits and at most two decimals, with no sign, exponent or thousands separator.", text)
		}
	default:
		return a
	}
	return 0
}
