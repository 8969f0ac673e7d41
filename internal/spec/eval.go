package spec

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// mark is the type of ddctl's cty marks, so that they cannot collide with
// marks of other packages.
type mark string

// sensitiveMark is carried by the value of a variable declared with
// sensitive = true and, through cty's mark propagation, by every value
// derived from it (terraform internal/lang/marks).
const sensitiveMark = mark("sensitive")

// evalContext builds the context every top-level expression is evaluated
// in: var.* and the function table. for_each instances add each.* in a
// child context (eachContext).
func (l *loader) evalContext(vars map[string]cty.Value) *hcl.EvalContext {
	varObj := cty.EmptyObjectVal
	if len(vars) > 0 {
		varObj = cty.ObjectVal(vars)
	}
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": varObj},
		Functions: l.funcs,
	}
}

// eachContext is the child context of one for_each instance.
func eachContext(parent *hcl.EvalContext, key string, value cty.Value) *hcl.EvalContext {
	// hcl's diagnostic writer prints the values of the variables an erroneous
	// expression refers to, skipping only values marked at the top. Marking
	// the whole of each.value when any part of it is sensitive keeps a
	// sensitive attribute of an object out of those lines.
	if value.HasMarkDeep(sensitiveMark) {
		value = value.Mark(sensitiveMark)
	}
	child := parent.NewChild()
	child.Variables = map[string]cty.Value{
		"each": cty.ObjectVal(map[string]cty.Value{
			"key":   cty.StringVal(key),
			"value": value,
		}),
	}
	return child
}

// scope is where an attribute is evaluated: the context, and for a
// for_each instance its address, which diagnostics name because the same
// line is evaluated once per instance.
type scope struct {
	ctx  *hcl.EvalContext
	addr string // instance address for diagnostics; "" when there is one instance
}

// prefix starts a diagnostic detail with the instance address, if any.
func (s scope) prefix() string {
	if s.addr == "" {
		return ""
	}
	return s.addr + ": "
}

// value evaluates attr and returns its value without marks. ok is false when
// the value cannot be used: evaluation failed (reported), the value is not
// known because of an earlier error (not reported again), or it is
// sensitive where sensitiveOK is false (reported). A null value is returned
// as is; the caller decides what null means.
func (l *loader) value(s scope, attr *hcl.Attribute, sensitiveOK bool) (cty.Value, bool) {
	v, diags := attr.Expr.Value(s.ctx)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	v, marks := v.UnmarkDeep()
	if _, sensitive := marks[sensitiveMark]; sensitive && !sensitiveOK {
		l.errorf(attr.Expr.Range().Ptr(), "Sensitive value in printed field",
			"%sThe value of %s is derived from a sensitive variable, but %s appears in plans, logs and the state file, where a secret must never be shown. "+
				"Use a value that is not sensitive here, or remove sensitive = true from the variable if it is not a secret.",
			s.prefix(), attr.Name, attr.Name)
		return cty.NilVal, false
	}
	return v, true
}

// str evaluates a string attribute. ok is false when attr is nil (absent),
// when its value is null (an error if required) and on any other error
// (reported). Numbers and bools convert to strings, as in Terraform.
func (l *loader) str(s scope, attr *hcl.Attribute, required bool) (string, bool) {
	return l.strValue(s, attr, required, false)
}

// strValue is str that may accept a sensitive value.
func (l *loader) strValue(s scope, attr *hcl.Attribute, required, sensitiveOK bool) (string, bool) {
	if attr == nil {
		return "", false
	}
	v, ok := l.value(s, attr, sensitiveOK)
	if !ok || l.null(s, attr, v, required) {
		return "", false
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil {
		l.errorf(attr.Expr.Range().Ptr(), "Incorrect value type",
			"%s%s must be a string, but it is %s.", s.prefix(), attr.Name, friendly(v))
		return "", false
	}
	return sv.AsString(), true
}

// null reports whether v is null, and if the attribute is required says so:
// null is how an expression leaves an attribute unset, and the schema only
// catches a required attribute that is not written at all.
func (l *loader) null(s scope, attr *hcl.Attribute, v cty.Value, required bool) bool {
	if !v.IsNull() {
		return false
	}
	if required {
		l.errorf(attr.Expr.Range().Ptr(), "Missing required argument",
			"%sThe argument %q is required, but its value is null.", s.prefix(), attr.Name)
	}
	return true
}

// friendly names a value's type for a diagnostic, never its content.
func friendly(v cty.Value) string {
	return "of type " + v.Type().FriendlyName()
}
