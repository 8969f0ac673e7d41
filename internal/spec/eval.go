package spec

import (
	"fmt"
	"slices"

	"github.com/agext/levenshtein"
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
// in: var.*, local.* and the function table. for_each instances add each.*
// in a child context (eachContext).
func (l *loader) evalContext(vars, locals map[string]cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": objectVal(vars), "local": objectVal(locals)},
		Functions: l.funcs,
	}
}

// objectVal is cty.ObjectVal, or the empty object for no attributes.
func objectVal(attrs map[string]cty.Value) cty.Value {
	if len(attrs) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(attrs)
}

// references checks the var.NAME and local.NAME references of expr against
// the declared names before expr is evaluated, so that a typo gets its own
// error with a suggestion (hcl would only say that the object has no such
// attribute). ok is false when a reference is reported.
func (l *loader) references(expr hcl.Expression) bool {
	ok := true
	for _, tr := range expr.Variables() {
		if len(tr) < 2 {
			continue
		}
		step, isAttr := tr[1].(hcl.TraverseAttr)
		if !isAttr {
			continue
		}
		var names []string
		var summary, what, how string
		switch tr.RootName() {
		case "var":
			names, summary, what = l.varNames, "Reference to undeclared input variable", "input variable"
			how = fmt.Sprintf("Declare it with a variable %q {} block", step.Name)
		case "local":
			names, summary, what = l.localNames, "Reference to undeclared local value", "local value"
			how = fmt.Sprintf("Define it in a locals block (%s = ...)", step.Name)
		default:
			continue
		}
		if slices.Contains(names, step.Name) {
			continue
		}
		ok = false
		l.errorf(tr.SourceRange().Ptr(), summary, "There is no %s named %q.%s %s, or correct the reference.",
			what, step.Name, suggestion(step.Name, names), how)
	}
	return ok
}

// suggestion returns ` Did you mean "NAME"?` for the candidate closest to
// given, if one is close enough to be a likely typo, and "" otherwise.
func suggestion(given string, candidates []string) string {
	best, bestDist := "", 3 // hcl's threshold: at most two edits
	for _, c := range candidates {
		if d := levenshtein.Distance(given, c, nil); d < bestDist || d == bestDist && c < best && best != "" {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
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
	// Constant scopes (variable blocks) have no variables, and hcl says so.
	if s.ctx.Variables != nil && !l.references(attr.Expr) {
		return cty.NilVal, false
	}
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
