package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ddctl/ddctl/internal/spec"
)

// Targets narrows a plan to some instances (-target ADDR, as Terraform's):
// an instance address (refund.a, refund.a["k"]), a block address that
// stands for all its instances (refund.a), or one occurrence of a charge
// (recurring_charge.gym#2026-12-01T09:00+07:00). Nil means everything.
type Targets []string

// ParseTargets checks each -target against the configuration and writes
// occurrence addresses in their canonical form (the configured zone), so
// that any offset names the same instant. A target that names nothing is
// an error: a typo must not turn into a plan that silently does nothing.
func ParseTargets(cfg *spec.Config, raw []string) (Targets, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	addrs := cfg.Addresses()
	var out Targets
	for _, t := range raw {
		if strings.Contains(t, "#") {
			charge, at, err := spec.ParseOccurrenceAddress(t)
			if err != nil {
				return nil, fmt.Errorf("-target %q is not an occurrence address: %v", t, err)
			}
			if !slices.Contains(addrs, charge) {
				return nil, fmt.Errorf("-target %q: the configuration has no %s.%s", t, charge, spec.DidYouMean(charge, addrs))
			}
			var c spec.Charge
			for _, cc := range cfg.Charges {
				if cc.Address == charge {
					c = cc
				}
			}
			if occ := c.Occurrences(at, at.Add(1), cfg.Settings.Location); len(occ) != 1 || !occ[0].Equal(at) {
				return nil, fmt.Errorf("-target %q: %s has no occurrence at that time; ddctl state list shows the occurrences it knows", t, charge)
			}
			out = append(out, spec.OccurrenceAddress(charge, at, cfg.Settings.Location))
			continue
		}
		if !slices.ContainsFunc(addrs, func(a string) bool { return a == t || strings.HasPrefix(a, t+"[") }) {
			return nil, fmt.Errorf("-target %q matches no block in the configuration.%s", t, spec.DidYouMean(t, addrs))
		}
		out = append(out, t)
	}
	return out, nil
}

// Match reports whether the instance or occurrence at addr is targeted.
func (t Targets) Match(addr string) bool {
	if t == nil {
		return true
	}
	for _, x := range t {
		if addr == x || strings.HasPrefix(addr, x+"[") || strings.HasPrefix(addr, x+"#") {
			return true
		}
	}
	return false
}

// Touches reports whether some occurrence of the charge instance at addr
// may be targeted: the instance is, or a target names one of its
// occurrences.
func (t Targets) Touches(addr string) bool {
	if t.Match(addr) {
		return true
	}
	for _, x := range t {
		if strings.HasPrefix(x, addr+"#") {
			return true
		}
	}
	return false
}
