// Package money holds Amount, the one representation of a sum of money in
// ddctl: an integer count of minor units (sen for IDR), never a float.
package money

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Currency is the only currency Allo Bank direct debit accepts.
const Currency = "IDR"

// MaxAmount is the largest amount DOKU's amount format can carry: 16 integer
// digits and two decimals.
const MaxAmount Amount = 9999999999999999_99

// Amount is a sum in minor units (1/100 IDR). The zero value is zero rupiah.
type Amount int64

// Errors returned by Parse. Callers branch on them to phrase diagnostics.
var (
	ErrSyntax    = errors.New("not a decimal number")
	ErrNegative  = errors.New("negative")
	ErrDecimals  = errors.New("more than two decimals")
	ErrTooLarge  = errors.New("more than 16 integer digits")
	ErrNotAmount = errors.New("not an amount")
)

// Parse reads a decimal amount such as "150000", "150000.5" or "150000.00".
// It accepts no sign, no exponent and no thousands separator, so that what
// an operator wrote is exactly what is sent. Zero parses; whether zero is
// allowed is the caller's rule.
func Parse(s string) (Amount, error) {
	if s == "" {
		return 0, ErrSyntax
	}
	if s[0] == '-' {
		return 0, ErrNegative
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || !digits(intPart) || (hasDot && (frac == "" || !digits(frac))) {
		return 0, ErrSyntax
	}
	if len(frac) > 2 {
		if strings.TrimRight(frac[2:], "0") != "" {
			return 0, ErrDecimals
		}
		frac = frac[:2]
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 16 {
		return 0, ErrTooLarge
	}
	for len(frac) < 2 {
		frac += "0"
	}
	n, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil && intPart != "" {
		return 0, ErrTooLarge
	}
	return Amount(n), nil
}

// ParseWire reads DOKU's wire form, which must have exactly two decimals
// (^(0|[1-9][0-9]{0,15})\.[0-9]{2}$).
func ParseWire(s string) (Amount, error) {
	intPart, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 || intPart == "" || len(intPart) > 16 ||
		(len(intPart) > 1 && intPart[0] == '0') || !digits(intPart) || !digits(frac) {
		return 0, fmt.Errorf("amount %q: %w", s, ErrNotAmount)
	}
	return Parse(s)
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Value is the wire form DOKU expects: "150000.00".
func (a Amount) Value() string {
	sign := ""
	n := int64(a)
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s%d.%02d", sign, n/100, n%100)
}

// String is the form shown to people: "IDR 150,000.00".
func (a Amount) String() string {
	v := a.Value()
	sign := ""
	if v[0] == '-' {
		sign, v = "-", v[1:]
	}
	intPart, frac, _ := strings.Cut(v, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return Currency + " " + sign + b.String() + "." + frac
}
