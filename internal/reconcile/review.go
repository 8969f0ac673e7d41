package reconcile

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Reviewed is what a plan shown for review (plan -review -json, as a pull
// request's job renders it with no key) said would be called: the
// configuration it was made from and each call by address.
type Reviewed struct {
	SpecDigest string
	Calls      map[string]ReviewedCall
}

// ReviewedCall is one call a reviewed plan showed.
type ReviewedCall struct {
	Kind        string
	Payment     string // a refund's
	AmountMinor int64  // a refund's or a charge's
}

// ReadReviewed reads a plan rendered by RenderJSON.
func ReadReviewed(r io.Reader) (*Reviewed, error) {
	var doc struct {
		FormatVersion   string `json:"format_version"`
		SpecDigest      string `json:"spec_digest"`
		ResourceChanges []struct {
			Address string `json:"address"`
			Kind    string `json:"kind"`
			Change  struct {
				After struct {
					Payment     string `json:"payment"`
					AmountMinor int64  `json:"amount_minor"`
				} `json:"after"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("read the reviewed plan: %w (want what plan -json wrote)", err)
	}
	if doc.FormatVersion != JSONFormatVersion || doc.SpecDigest == "" {
		return nil, fmt.Errorf("read the reviewed plan: format version %q with spec digest %q; want what plan -json of this ddctl (%s) wrote", doc.FormatVersion, doc.SpecDigest, JSONFormatVersion)
	}
	rv := &Reviewed{SpecDigest: doc.SpecDigest, Calls: map[string]ReviewedCall{}}
	for _, c := range doc.ResourceChanges {
		rv.Calls[c.Address] = ReviewedCall{Kind: c.Kind, Payment: c.Change.After.Payment, AmountMinor: c.Change.After.AmountMinor}
	}
	return rv, nil
}

// CheckReviewed refuses a plan that would make a call the reviewed plan
// did not show, or one made from another configuration. Fewer calls are
// fine: a charge the balance now defers, a refund made since. So the plan
// that is applied moves no money, and reaches no customer, that nobody
// saw.
func (p *Plan) CheckReviewed(rv *Reviewed) error {
	if p.SpecDigest != rv.SpecDigest {
		return fmt.Errorf("the configuration is not the one the reviewed plan was made from (another change was merged since, or the files differ); plan the merged configuration for review again")
	}
	var extra []string
	for _, a := range p.Actions {
		c, ok := rv.Calls[a.Address]
		switch {
		case !ok:
			extra = append(extra, fmt.Sprintf("%s (%s): not in the reviewed plan", a.Address, a.Kind))
		case c.Kind != string(a.Kind):
			extra = append(extra, fmt.Sprintf("%s: %s here, %s in the reviewed plan", a.Address, a.Kind, c.Kind))
		case (a.Kind == ActionRefund || a.Kind == ActionCharge) && c.AmountMinor != int64(a.Amount):
			extra = append(extra, fmt.Sprintf("%s: %s here, %d minor units in the reviewed plan", a.Address, a.Amount, c.AmountMinor))
		case a.Kind == ActionRefund && c.Payment != a.Payment:
			extra = append(extra, fmt.Sprintf("%s: refunds %s here, %s in the reviewed plan", a.Address, a.Payment, c.Payment))
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("the plan makes calls the reviewed plan did not show:\n  %s\nnothing was saved; plan the change for review again", strings.Join(extra, "\n  "))
	}
	return nil
}
