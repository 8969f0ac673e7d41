package spec

import (
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// local is one attribute of a locals block.
type local struct {
	attr *hcl.Attribute
	deps []string // names of the locals it refers to, declared ones only
}

// decodeLocals evaluates the locals blocks: any number of them, whose
// attribute names are unique across all of them. A local may refer to
// var.*, to other locals and to functions; locals are evaluated in the
// order of their references, and each one that is part of a reference
// cycle gets a "Cycle in local values" error. A local in error is
// cty.DynamicVal, so that expressions using it report nothing more.
func (l *loader) decodeLocals(blocks []*hcl.Block, vars map[string]cty.Value) map[string]cty.Value {
	decls := make(map[string]*local)
	var order []string // source order, for deterministic diagnostics
	for _, b := range blocks {
		attrs, diags := b.Body.JustAttributes()
		l.diags = append(l.diags, diags...)
		sorted := make([]*hcl.Attribute, 0, len(attrs))
		for _, attr := range attrs {
			sorted = append(sorted, attr)
		}
		slices.SortFunc(sorted, func(a, b *hcl.Attribute) int { return a.Range.Start.Byte - b.Range.Start.Byte })
		for _, attr := range sorted {
			if first, ok := decls[attr.Name]; ok {
				l.errorf(attr.NameRange.Ptr(), "Duplicate local value",
					"A local value named %q was already defined at %s:%d. Local value names are unique across all locals blocks of the configuration; rename one of them.",
					attr.Name, first.attr.Range.Filename, first.attr.Range.Start.Line)
				continue
			}
			decls[attr.Name] = &local{attr: attr}
			order = append(order, attr.Name)
		}
	}
	l.localNames = order

	for _, name := range order {
		d := decls[name]
		for _, tr := range d.attr.Expr.Variables() {
			if tr.RootName() != "local" || len(tr) < 2 {
				continue
			}
			if step, ok := tr[1].(hcl.TraverseAttr); ok && decls[step.Name] != nil && !slices.Contains(d.deps, step.Name) {
				d.deps = append(d.deps, step.Name)
			}
		}
	}

	values := make(map[string]cty.Value)
	const (
		unvisited = iota
		visiting
		done
	)
	stateOf := make(map[string]int)
	inCycle := make(map[string]bool)
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		switch stateOf[name] {
		case done:
			return
		case visiting:
			// A cycle: the stack from name's first appearance to its top.
			cycle := append(slices.Clone(stack[slices.Index(stack, name):]), name)
			path := "local." + strings.Join(cycle, " → local.")
			for _, member := range cycle[:len(cycle)-1] {
				if inCycle[member] {
					continue
				}
				inCycle[member] = true
				l.errorf(decls[member].attr.Expr.Range().Ptr(), "Cycle in local values",
					"local.%s depends on itself: %s. A local value cannot be computed from itself; break the cycle.", member, path)
			}
			return
		}
		stateOf[name] = visiting
		stack = append(stack, name)
		d := decls[name]
		for _, dep := range d.deps {
			visit(dep)
		}
		stack = stack[:len(stack)-1]
		stateOf[name] = done
		if inCycle[name] {
			values[name] = cty.DynamicVal
			return
		}
		values[name] = l.localValue(d, vars, values)
	}
	for _, name := range order {
		visit(name)
	}
	return values
}

// localValue evaluates one local, whose dependencies are in values.
// Marks are kept: a local derived from a sensitive variable is sensitive.
func (l *loader) localValue(d *local, vars, values map[string]cty.Value) cty.Value {
	if !l.references(d.attr.Expr) {
		return cty.DynamicVal
	}
	// Only the locals it refers to: they are all evaluated by now.
	deps := make(map[string]cty.Value, len(d.deps))
	for _, dep := range d.deps {
		deps[dep] = values[dep]
	}
	v, diags := d.attr.Expr.Value(l.evalContext(vars, deps))
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return cty.DynamicVal
	}
	return v
}
