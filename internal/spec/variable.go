package spec

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// envVarPrefix starts the name of an environment variable that gives a
// value to a configuration variable: DDCTL_VAR_client_secret.
const envVarPrefix = "DDCTL_VAR_"

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "default"},
		{Name: "type"},
		{Name: "description"},
		{Name: "sensitive"},
	},
}

// variable is a decoded variable block.
type variable struct {
	name      string
	block     *hcl.Block
	ty        cty.Type  // cty.DynamicPseudoType when no type is declared
	def       cty.Value // valid when hasDef
	hasDef    bool
	broken    bool // the block has errors: its value is unknown, and no more is said
	sensitive bool
}

// rawValue is a variable's value from outside the configuration: a string
// from the command line or the environment, or a value from a var file.
type rawValue struct {
	value  string
	source string // for diagnostics: "-var", "the environment variable DDCTL_VAR_x", "the variable file F"

	// From a var file: the evaluated value (value is then unused) and the
	// range of its expression, where an error about it points.
	val cty.Value
	rng *hcl.Range
}

// decodeVariables decodes the variable blocks and settles each variable's
// value: default < DDCTL_VAR_name < var files (in order) < -var (the last
// -var wins). A variable whose value is in error is cty.DynamicVal, so that
// expressions using it are unknown and report nothing more. Var files are
// added to files, so that diagnostics about them show their lines.
func (l *loader) decodeVariables(blocks []*hcl.Block, opts LoadOptions, files map[string]*hcl.File) map[string]cty.Value {
	varArgs, env := opts.Vars, opts.Env
	decls := make(map[string]*variable)
	seen := make(map[string]*hcl.Block)
	var order []*variable
	for _, b := range blocks {
		if !l.uniqueName(b, seen) {
			continue
		}
		v := l.decodeVariable(b)
		decls[v.name] = v
		order = append(order, v)
		l.varNames = append(l.varNames, v.name)
	}

	raw := make(map[string]rawValue)
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envVarPrefix) {
			continue
		}
		name = strings.TrimPrefix(name, envVarPrefix)
		if decls[name] == nil {
			// A warning, not an error: the environment is shared with other
			// configurations, but a typo should not go unnoticed.
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("The environment variable %s%s gives a value to a variable %q, but the configuration declares no such variable; the value is ignored.", envVarPrefix, name, name),
			})
			continue
		}
		raw[name] = rawValue{value: value, source: "the environment variable " + envVarPrefix + name}
	}
	for _, path := range opts.VarFiles {
		l.readVarFile(path, decls, raw, files)
	}
	for i, arg := range varArgs {
		name, value, ok := strings.Cut(arg, "=")
		if !ok || name == "" {
			// The argument is not echoed: it may be a secret typed without its name.
			l.errorf(nil, "Invalid -var option",
				"The -var option number %d is not of the form name=value. Give a variable name and value separated by an equals sign, like -var 'client_id=C-123'.", i+1)
			continue
		}
		if decls[name] == nil {
			l.errorf(nil, "Value for undeclared variable",
				"A -var option gives a value to a variable %q, but the configuration declares no such variable.%s Declare it with a variable %q {} block, or remove the option.",
				name, suggestion(name, l.varNames), name)
			continue
		}
		raw[name] = rawValue{value: value, source: "-var"}
	}

	values := make(map[string]cty.Value)
	for _, v := range order {
		val := l.variableValue(v, raw)
		if v.sensitive {
			val = val.Mark(sensitiveMark)
		}
		values[v.name] = val
	}
	return values
}

// decodeVariable decodes one variable block. Its attributes are constants:
// they are evaluated without variables.
func (l *loader) decodeVariable(b *hcl.Block) *variable {
	v := &variable{name: b.Labels[0], block: b, ty: cty.DynamicPseudoType}
	before := len(l.diags.Errs())
	defer func() { v.broken = len(l.diags.Errs()) > before }()
	content, diags := b.Body.Content(variableSchema)
	l.diags = append(l.diags, diags...)
	constant := scope{ctx: &hcl.EvalContext{Functions: l.funcs}}

	if attr := content.Attributes["type"]; attr != nil {
		ty, diags := typeexpr.TypeConstraint(attr.Expr)
		l.diags = append(l.diags, diags...)
		if !diags.HasErrors() {
			v.ty = ty
		}
	}
	if attr := content.Attributes["sensitive"]; attr != nil {
		if val, ok := l.value(constant, attr, false); ok && !val.IsNull() {
			if val.Type() != cty.Bool {
				l.errorf(attr.Expr.Range().Ptr(), "Incorrect value type", "sensitive must be true or false, but it is %s.", friendly(val))
			} else {
				v.sensitive = val.True()
			}
		}
	}
	if attr := content.Attributes["description"]; attr != nil {
		l.str(constant, attr, false)
	}
	if attr := content.Attributes["default"]; attr != nil {
		// As in Terraform, default = null makes the variable optional, with
		// null as its value (an omitted amount, for example).
		if val, ok := l.value(constant, attr, false); ok {
			conv, err := convert.Convert(val, v.ty)
			if err != nil {
				l.errorf(attr.Expr.Range().Ptr(), "Invalid default value for variable",
					"The default value of variable %q is not a valid %s: %s.", v.name, typeexpr.TypeString(v.ty), err)
			} else {
				v.def, v.hasDef = conv, true
			}
		}
	}
	return v
}

// variableValue returns v's value from raw or from its default.
func (l *loader) variableValue(v *variable, raw map[string]rawValue) cty.Value {
	r, given := raw[v.name]
	if !given {
		if v.broken {
			return cty.DynamicVal
		}
		if !v.hasDef {
			how := fmt.Sprintf("-var '%s=VALUE'", v.name)
			if v.sensitive {
				how = "the environment variable " + envVarPrefix + v.name + " (which keeps the secret out of your shell history)"
			}
			l.errorf(v.block.DefRange.Ptr(), "No value for required variable",
				"The variable %q has no default, so it needs a value: give it with %s, or add a default.", v.name, how)
			return cty.DynamicVal
		}
		return v.def
	}

	var val cty.Value
	var err error
	subject := v.block.DefRange.Ptr()
	if r.rng != nil {
		val, err = convert.Convert(r.val, v.ty)
		subject = r.rng
	} else {
		val, err = parseRawValue(v, r.value)
	}
	if err != nil {
		detail := fmt.Sprintf("The value given for variable %q by %s is not a valid %s", v.name, r.source, typeexpr.TypeString(v.ty))
		if !v.sensitive { // the reason may quote the value
			detail += ": " + err.Error()
		}
		l.errorf(subject, "Invalid value for variable", "%s.", detail)
		return cty.DynamicVal
	}
	return val
}

// readVarFile reads one -var-file: an HCL file of name = value lines, whose
// values are constants (no variables; functions are not available either,
// as in Terraform's .tfvars). Each value goes into raw, over what is there.
func (l *loader) readVarFile(path string, decls map[string]*variable, raw map[string]rawValue, files map[string]*hcl.File) {
	src, err := os.ReadFile(path)
	if err != nil {
		l.errorf(nil, "Cannot read variable file", "Reading the -var-file %s failed: %s.", path, err)
		return
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	l.diags = append(l.diags, diags...)
	if f == nil {
		return
	}
	files[path] = f
	attrs, diags := f.Body.JustAttributes()
	l.diags = append(l.diags, diags...)
	sorted := make([]*hcl.Attribute, 0, len(attrs))
	for _, attr := range attrs {
		sorted = append(sorted, attr)
	}
	slices.SortFunc(sorted, func(a, b *hcl.Attribute) int { return a.Range.Start.Byte - b.Range.Start.Byte })
	for _, attr := range sorted {
		if decls[attr.Name] == nil {
			l.errorf(attr.NameRange.Ptr(), "Value for undeclared variable",
				"The variable file %s gives a value to a variable %q, but the configuration declares no such variable.%s Declare it with a variable %q {} block, or remove the line.",
				path, attr.Name, suggestion(attr.Name, l.varNames), attr.Name)
			continue
		}
		val, diags := attr.Expr.Value(nil)
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			raw[attr.Name] = rawValue{source: "the variable file " + path, val: cty.DynamicVal, rng: attr.Expr.Range().Ptr()}
			continue
		}
		raw[attr.Name] = rawValue{source: "the variable file " + path, val: val, rng: attr.Expr.Range().Ptr()}
	}
}

// parseRawValue turns a string from the command line or the environment
// into a value of v's type. Values of primitive types (or of no declared
// type) are taken as strings and converted; a collection or structure is
// written as an HCL expression, as in Terraform: -var 'ids=["a","b"]'.
func parseRawValue(v *variable, raw string) (cty.Value, error) {
	if v.ty.IsPrimitiveType() || v.ty == cty.DynamicPseudoType {
		return convert.Convert(cty.StringVal(raw), v.ty)
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), "<value for var."+v.name+">", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("it is not a valid HCL expression (%s)", diags[0].Summary)
	}
	val, diags := expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("it is not a constant HCL expression (%s)", diags[0].Summary)
	}
	return convert.Convert(val, v.ty)
}
