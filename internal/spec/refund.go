package spec

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/ddctl/ddctl/internal/money"
)

// Limits of refund fields (SNAP-ALLO.md: originalPartnerReferenceNo, reason).
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
	Payment   string       // the original payment's partnerReferenceNo: 1-64 characters
	Amount    money.Amount // > 0; 0 means the full paid amount (amount omitted)
	Reason    string       // at most 255 characters; may be empty
	NotBefore time.Time    // the refund is not made before this instant; zero when not scheduled
	DeclRange hcl.Range    // the block's header, the same for every instance
}

var refundSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "for_each"},
		{Name: "payment", Required: true},
		{Name: "amount"},
		{Name: "currency"},
		{Name: "reason"},
		{Name: "not_before"},
	},
}

// decodeRefund decodes a refund block into its instances: one, or one per
// for_each key. Dates without a time are midnight in loc.
func (l *loader) decodeRefund(b *hcl.Block, ctx *hcl.EvalContext, loc *time.Location) []Refund {
	content, diags := b.Body.Content(refundSchema)
	l.diags = append(l.diags, diags...)
	attrs := content.Attributes
	name := b.Labels[0]
	addr := "refund." + name

	if attrs["for_each"] == nil {
		r, ok := l.decodeRefundInstance(scope{ctx: ctx}, attrs, loc)
		if !ok {
			return nil
		}
		r.Address, r.Name, r.DeclRange = addr, name, b.DefRange
		return []Refund{r}
	}

	var refunds []Refund
	for _, inst := range l.forEach(attrs["for_each"], ctx) {
		instAddr := addr + "[" + strconv.Quote(inst.key) + "]"
		sc := scope{ctx: eachContext(ctx, inst.key, inst.value), addr: instAddr}
		r, ok := l.decodeRefundInstance(sc, attrs, loc)
		if !ok {
			continue
		}
		r.Address, r.Name, r.Key, r.DeclRange = instAddr, name, inst.key, b.DefRange
		refunds = append(refunds, r)
	}
	return refunds
}

// decodeRefundInstance evaluates the attributes of one refund instance. ok
// is false when any of them is in error.
func (l *loader) decodeRefundInstance(sc scope, attrs hcl.Attributes, loc *time.Location) (r Refund, ok bool) {
	before := len(l.diags.Errs())

	if p, ok := l.str(sc, attrs["payment"], true); ok {
		switch n := utf8.RuneCountInString(p); {
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
	}

	if c, ok := l.str(sc, attrs["currency"], false); ok && c != money.Currency {
		l.errorf(attrs["currency"].Expr.Range().Ptr(), "Unsupported currency",
			"%scurrency is %q, but Allo Bank direct debit only takes %s. Remove currency or set it to %q.", sc.prefix(), c, money.Currency, money.Currency)
	}

	if reason, ok := l.str(sc, attrs["reason"], false); ok {
		if n := utf8.RuneCountInString(reason); n > maxReasonLength {
			l.errorf(attrs["reason"].Expr.Range().Ptr(), "Invalid reason",
				"%sreason is %d characters long; DOKU takes at most %d.", sc.prefix(), n, maxReasonLength)
		} else {
			r.Reason = reason
		}
	}

	if s, ok := l.str(sc, attrs["not_before"], false); ok {
		t, err := parseTimestamp(s, loc)
		if err != nil {
			l.errorf(attrs["not_before"].Expr.Range().Ptr(), "Invalid timestamp",
				"%snot_before is %q, which is neither an RFC 3339 timestamp such as \"2026-12-05T02:00:00+07:00\" nor a date such as \"2026-12-05\" (midnight in settings.timezone).", sc.prefix(), s)
		} else {
			r.NotBefore = t
		}
	}

	return r, len(l.diags.Errs()) == before
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
