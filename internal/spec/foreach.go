package spec

import (
	"fmt"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"regexp"
	"strconv"
	"strings"
)

// instance is one element of a for_each value.
type instance struct {
	key   string
	value cty.Value
}

// duplicateKeyRe finds the key in HCL's "Duplicate object key" detail.
var duplicateKeyRe = regexp.MustCompile(`key ("[^"]*")`)

// forEach evaluates a for_each attribute into its instances, sorted by key.
// The value must be a map or an object (each.key is the key, each.value the
// element) or a set of strings (each.key and each.value are the string),
// because an instance is known by its key: a list index would change the
// address, and so the idempotency key, of every later element when one is
// removed (principle 2, docs/principles.md).
//
// ok is false when the value is in error (reported): the instances are
// then not known, and references to them are not checked.
func (l *loader) forEach(attr *hcl.Attribute, ctx *hcl.EvalContext) (instances []instance, ok bool) {
	rng := attr.Expr.Range().Ptr()
	invalid := func(detail string) {
		l.errorf(rng, "Invalid for_each argument", "%s", detail)
	}

	if !l.references(attr.Expr) {
		return nil, false
	}
	v, diags := attr.Expr.Value(ctx)
	for _, d := range diags {
		if d.Summary == "Duplicate object key" {
			// HCL suggests grouping with "...": for_each wants one
			// instance per key, so the data is what must change.
			key := "the same key"
			if m := duplicateKeyRe.FindStringSubmatch(d.Detail); m != nil {
				key = "the key " + m[1]
			}
			d.Detail = "Two elements produced " + key + ". In for_each, a key is an instance's address (refund.NAME[\"KEY\"]) and so its idempotency key: two rows with one key would be one refund. " +
				"Make the keys unique in the data (a row of a CSV repeated?), or key by a column that is unique; do not group them with \"...\"."
		}
	}
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return nil, false
	}
	switch {
	case !v.IsWhollyKnown():
		invalid("The for_each value depends on a value that is not known, because of an error reported above. Fix that first.")
		return nil, false
	case v.IsMarked():
		invalid("The for_each value is sensitive, or derived from a sensitive variable. Its keys become part of addresses, which appear in plans and logs, so for_each cannot use sensitive values.")
		return nil, false
	case v.IsNull():
		invalid("The for_each value is null. Give a map, or a set of strings, with one element per instance.")
		return nil, false
	}

	ty := v.Type()
	switch {
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, elem := it.Element()
			instances = append(instances, instance{key: k.AsString(), value: elem})
		}
	case ty.IsSetType() && ty.ElementType() == cty.String:
		for it := v.ElementIterator(); it.Next(); {
			_, elem := it.Element()
			if elem.IsNull() {
				invalid("The for_each set contains a null element; every element must be a string, the key of its instance.")
				return nil, false
			}
			instances = append(instances, instance{key: elem.AsString(), value: elem})
		}
	case ty.IsSetType():
		invalid("The for_each value is a set of " + ty.ElementType().FriendlyName() + ", but a set must hold strings, the keys of the instances. Build a map with a for expression, such as { for r in rows : r.id => r }.")
		return nil, false
	case ty.IsListType() || ty.IsTupleType():
		invalid("The for_each value is a list, but for_each needs a map or a set of strings, because each instance is known by its key and a list has only positions. " +
			"Convert a list of strings with toset(...), or build a map with a for expression, such as { for r in csvdecode(file(\"refunds.csv\")) : r.order_id => r }.")
		return nil, false
	default:
		invalid("The for_each value is a " + ty.FriendlyName() + ", but for_each needs a map, or a set of strings.")
		return nil, false
	}

	for _, inst := range instances {
		if inst.key == "" {
			invalid("The for_each value has an empty key. Every instance needs a non-empty key: it becomes part of the instance's address, refund.NAME[\"KEY\"].")
			return nil, false
		}
		if phoneLike(inst.key) {
			invalid(fmt.Sprintf("The for_each key %s looks like a phone number. A key is part of the instance's address, which plans, history, logs and pull-request comments show in full, where phone numbers are masked. "+
				"Key by something that is not personal data, such as the customer's id: { for c in csvdecode(file(\"customers.csv\")) : c.customer_id => c }.", maskedKey(inst.key)))
			return nil, false
		}
	}
	return instances, true
}

// phoneLike reports whether key reads as an Indonesian phone number:
// 62, 0 or +62 then 8, and 9 to 16 digits in all, spaces and dashes
// aside.
func phoneLike(key string) bool {
	digits := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimPrefix(key, "+"))
	if len(digits) < 9 || len(digits) > 16 || strings.Trim(digits, "0123456789") != "" {
		return false
	}
	return strings.HasPrefix(digits, "628") || strings.HasPrefix(digits, "08")
}

// maskedKey quotes key with all but its first 4 and last 4 characters
// hidden, as phone numbers are shown.
func maskedKey(key string) string {
	if len(key) <= 8 {
		return strconv.Quote(strings.Repeat("*", len(key)))
	}
	return strconv.Quote(key[:4] + strings.Repeat("*", len(key)-8) + key[len(key)-4:])
}
