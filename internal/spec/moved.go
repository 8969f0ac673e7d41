package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Moved is a moved block: the state's entries at From now belong to To, as
// Terraform's moved block renames a resource. A money move's identity is
// its state entry and the idempotency keys it was sent under, not the
// block's name: a renamed refund, charge or binding keeps what the state
// knows of it (every occurrence and attempt of a charge follows), and
// nothing is sent again.
//
// From and To are both instance addresses (refund.a, refund.b["k"]), or
// both block addresses (Block): every instance of the From block moves to
// the instance of the To block with the same key. A chain of moved blocks
// (a to b, then b to c) is one Moved, from a to c.
type Moved struct {
	From, To  string
	Block     bool
	DeclRange hcl.Range
}

// movedKinds are the blocks whose state entries a moved block may move.
var movedKinds = []string{"refund", "recurring_charge", "binding"}

var movedSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "from", Required: true},
		{Name: "to", Required: true},
	},
}

// movedAddr is one side of a moved block.
type movedAddr struct {
	kind, name, key string
	keyed           bool
	rng             hcl.Range
}

func (a movedAddr) String() string {
	if !a.keyed {
		return a.kind + "." + a.name
	}
	return instanceAddress(a.kind, a.name, a.key)
}

// decodeMoved decodes the moved blocks and checks them against the
// configuration's instances (addrs): every To names a block or instance
// of the configuration, no From does, and From and To are of one kind.
// Chains are joined; a cycle or two blocks moving one address are errors.
func (l *loader) decodeMoved(blocks []*hcl.Block, addrs []string) []Moved {
	type raw struct {
		from, to movedAddr
		b        *hcl.Block
	}
	var all []raw
	for _, b := range blocks {
		content, diags := b.Body.Content(movedSchema)
		l.diags = append(l.diags, diags...)
		from, okFrom := l.movedAddr(content.Attributes["from"])
		to, okTo := l.movedAddr(content.Attributes["to"])
		if !okFrom || !okTo {
			continue
		}
		switch {
		case from.kind != to.kind:
			l.errorf(to.rng.Ptr(), "Invalid moved block",
				"A %s's state entries can only move to another %s: %s cannot become %s.", from.kind, from.kind, from, to)
			continue
		case from.String() == to.String():
			l.errorf(b.DefRange.Ptr(), "Invalid moved block", "from and to are both %s: a moved block moves entries to another address.", from)
			continue
		}
		all = append(all, raw{from, to, b})
	}

	declared := func(a movedAddr) bool {
		s := a.String()
		return slices.ContainsFunc(addrs, func(x string) bool {
			return x == s || !a.keyed && strings.HasPrefix(x, s+"[")
		})
	}
	byFrom := map[string]raw{}
	var out []Moved
	for _, m := range all {
		from := m.from.String()
		if first, ok := byFrom[from]; ok {
			l.errorf(m.from.rng.Ptr(), "Duplicate moved block",
				"%s is already moved by the moved block at %s:%d; an address moves to one place.", from, first.b.DefRange.Filename, first.b.DefRange.Start.Line)
			continue
		}
		byFrom[from] = m
	}
	for _, m := range all {
		if byFrom[m.from.String()].b != m.b {
			continue // the duplicate, reported above
		}
		if declared(m.from) {
			l.errorf(m.from.rng.Ptr(), "Invalid moved block",
				"%s is still in the configuration, so its entries cannot move away from it. Remove or rename its block, or remove this moved block.", m.from)
			continue
		}
		// Follow the chain to its end.
		to, seen := m.to, map[string]bool{m.from.String(): true}
		cycle := false
		for {
			next, ok := byFrom[to.String()]
			if !ok {
				break
			}
			if seen[to.String()] {
				cycle = true
				break
			}
			seen[to.String()] = true
			to = next.to
		}
		if cycle {
			l.errorf(m.b.DefRange.Ptr(), "Cycle of moved blocks", "The moved blocks from %s lead back to it; remove one of them.", m.from)
			continue
		}
		if !declared(to) {
			l.errorf(m.to.rng.Ptr(), "Invalid moved block",
				"%s is not in the configuration: a moved block moves entries to a %s block that exists.%s", to, to.kind, suggestion(to.String(), addrs))
			continue
		}
		if m.from.keyed != to.keyed && (!m.from.keyed && l.isForEach(m.from) || !to.keyed && l.isForEach(to)) {
			l.errorf(m.b.DefRange.Ptr(), "Invalid moved block",
				"%s and %s: move a whole block to a whole block (from = %s.%s, to = %s.%s), or one instance to one instance.", m.from, to, m.from.kind, m.from.name, to.kind, to.name)
			continue
		}
		out = append(out, Moved{From: m.from.String(), To: to.String(), Block: !m.from.keyed && !to.keyed, DeclRange: m.b.DefRange})
	}
	// One entry moves to one place: an instance may not be moved by its
	// own block and by itself.
	for _, m := range out {
		for _, o := range out {
			if m.Block && strings.HasPrefix(o.From, m.From+"[") {
				l.errorf(o.DeclRange.Ptr(), "Overlapping moved blocks",
					"%s moves %s, and the moved block at %s:%d moves every instance of %s: an entry moves to one place. Keep one of them.",
					o, o.From, m.DeclRange.Filename, m.DeclRange.Start.Line, m.From)
			}
		}
	}
	slices.SortFunc(out, func(a, b Moved) int { return strings.Compare(a.From, b.From) })
	return out
}

// isForEach reports whether a's block is declared with for_each.
func (l *loader) isForEach(a movedAddr) bool {
	var reg map[string]*declared
	switch a.kind {
	case "binding":
		reg = l.bindings
	case "recurring_charge":
		reg = l.charges
	default:
		reg = l.refunds
	}
	d := reg[a.name]
	return d != nil && d.forEach
}

// movedAddr reads one side of a moved block: a reference such as
// refund.order_1, recurring_charge.gym or binding.team["alice"], written
// as a reference, not a string, as in Terraform.
func (l *loader) movedAddr(attr *hcl.Attribute) (movedAddr, bool) {
	if attr == nil {
		return movedAddr{}, false
	}
	bad := func(detail string, args ...any) (movedAddr, bool) {
		l.errorf(attr.Expr.Range().Ptr(), "Invalid moved block", attr.Name+" "+detail, args...)
		return movedAddr{}, false
	}
	tr, diags := hcl.AbsTraversalForExpr(attr.Expr)
	if diags.HasErrors() || len(tr) < 2 || len(tr) > 3 {
		return bad("must be an address such as refund.order_1, recurring_charge.gym or binding.team[\"alice\"], written without quotes.")
	}
	a := movedAddr{kind: tr.RootName(), rng: attr.Expr.Range()}
	if !slices.Contains(movedKinds, a.kind) {
		return bad("is %s: only refund, recurring_charge and binding entries have state to move (%s).", a.kind, strings.Join(movedKinds, ", "))
	}
	step, ok := tr[1].(hcl.TraverseAttr)
	if !ok || !validName(step.Name) {
		return bad("must name a %s block, such as %s.NAME.", a.kind, a.kind)
	}
	a.name = step.Name
	if len(tr) == 3 {
		ix, ok := tr[2].(hcl.TraverseIndex)
		if !ok {
			return bad("must end with the block's name or an instance key in brackets, such as %s.%s[\"KEY\"].", a.kind, a.name)
		}
		k, err := convert.Convert(ix.Key, cty.String)
		if err != nil || k.IsNull() || k.AsString() == "" {
			return bad("has a key that is not a non-empty string.")
		}
		a.key, a.keyed = k.AsString(), true
	}
	return a, true
}

// Destination is where the moved blocks send the state entry at addr (an
// instance, or an occurrence recurring_charge.NAME[KEY]#TIME), and
// whether one does.
func (c *Config) Destination(addr string) (string, bool) {
	for _, m := range c.Moved {
		if to, ok := m.Apply(addr); ok {
			return to, true
		}
	}
	return "", false
}

// Apply is where m sends addr: an instance address, or an occurrence
// address whose charge m moves. ok is false when m does not move addr.
func (m Moved) Apply(addr string) (string, bool) {
	base, rest := addr, ""
	if i := strings.Index(addr, "#"); i >= 0 && strings.HasPrefix(addr, chargePrefix) {
		base, rest = addr[:i], addr[i:]
	}
	switch {
	case base == m.From:
		return m.To + rest, true
	case m.Block && strings.HasPrefix(base, m.From+"["):
		return m.To + base[len(m.From):] + rest, true
	}
	return "", false
}

// FormerAddresses lists the addresses whose state entries the moved
// blocks send to the instance at addr: where its idempotency keys were
// derived from before it was renamed, so that DOKU can be asked about
// them when the state has lost them.
func (c *Config) FormerAddresses(addr string) []string {
	var out []string
	for _, m := range c.Moved {
		switch {
		case m.To == addr:
			out = append(out, m.From)
		case m.Block && strings.HasPrefix(addr, m.To+"["):
			out = append(out, m.From+addr[len(m.To):])
		}
	}
	return out
}

// String is the moved block as written.
func (m Moved) String() string {
	return fmt.Sprintf("moved { from = %s  to = %s }", m.From, m.To)
}
