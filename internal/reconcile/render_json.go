package reconcile

import (
	"encoding/json"
	"io"
	"time"

	"github.com/ddctl/ddctl/internal/money"
)

// JSONFormatVersion is the version of RenderJSON's document (plan -json,
// show -json), documented in cmd/ddctl/json-format.md. Its minor part
// changes when fields are added, its major part when a field changes
// meaning or goes away. It is apart from FormatVersion, the version of
// saved plans, which ReadPlan reads: the two change for different reasons.
//
// 1.1 added the fields of binds, unbinds and charges, the awaiting and
// deferred lists, waiting's reason and the summary's counts per kind; a
// refund's change is as it was in 1.0. 1.2 added generation, moved,
// verified and over_limit, and the summary's moved and over_limit.
const JSONFormatVersion = "1.2"

// Action reasons in RenderJSON's resource_changes.
const (
	// ReasonCreate: the instance has not been carried out yet (no refund,
	// no binding request, no unbinding, no charge of this occurrence and
	// attempt); the call is made.
	ReasonCreate = "create"
	// ReasonResendNotReceived: an earlier request reached no one (DOKU
	// has no record of it); the same request is sent again, same key.
	ReasonResendNotReceived = "resend_not_received"
)

// The document's types. Field order is output order; every list is present
// (empty, never null), so consumers need not tell missing from empty.
type (
	jsonPlan struct {
		FormatVersion   string           `json:"format_version"`
		DDCTLVersion    string           `json:"ddctl_version,omitempty"`
		CreatedAt       time.Time        `json:"created_at"`
		At              time.Time        `json:"at"`
		Lineage         string           `json:"lineage"`
		Serial          int64            `json:"serial"`
		SpecDigest      string           `json:"spec_digest"`
		Applyable       bool             `json:"applyable"`
		ResourceChanges []jsonChange     `json:"resource_changes"`
		Waiting         []jsonWaiting    `json:"waiting"`
		Awaiting        []jsonAwaiting   `json:"awaiting"`
		Deferred        []jsonProblem    `json:"deferred"`
		Errors          []jsonProblem    `json:"errors"`
		Unresolved      []jsonProblem    `json:"unresolved"`
		Resolved        []jsonResolution `json:"resolved"`
		Removed         []jsonRemoved    `json:"removed"`
		Noted           []jsonProblem    `json:"noted"`
		Generation      int64            `json:"generation"`
		Moved           []jsonMoved      `json:"moved"`
		Verified        []jsonRemoved    `json:"verified"`
		OverLimit       []jsonLimit      `json:"over_limit"`
		Summary         jsonSummary      `json:"summary"`
	}
	jsonMoved struct {
		From    string `json:"from"`
		To      string `json:"to"`
		Block   bool   `json:"block"`
		Entries int    `json:"entries"`
	}
	jsonLimit struct {
		Limit       string     `json:"limit"`
		Max         jsonAmount `json:"max"`
		MaxMinor    int64      `json:"max_minor"`
		Total       jsonAmount `json:"total"`
		TotalMinor  int64      `json:"total_minor"`
		BeforeMinor int64      `json:"before_minor"`
		Instances   []string   `json:"instances"`
	}
	jsonChange struct {
		Address      string         `json:"address"`
		Kind         string         `json:"kind"`
		ActionReason string         `json:"action_reason"`
		Change       jsonChangeBody `json:"change"`
	}
	jsonChangeBody struct {
		Actions []string `json:"actions"`
		// After is what the call sends: jsonRefund, jsonBind, jsonUnbind
		// or jsonCharge, by the change's kind.
		After any `json:"after"`
	}
	jsonRefund struct {
		Payment        string     `json:"payment"`
		Amount         jsonAmount `json:"amount"`
		AmountMinor    int64      `json:"amount_minor"`
		Reason         string     `json:"reason"`
		Binding        string     `json:"binding"`
		IdempotencyKey string     `json:"idempotency_key"`
	}
	jsonBind struct {
		CustomerID  string `json:"customer_id"`
		MaskedPhone string `json:"masked_phone"`
		SuccessURL  string `json:"success_url"`
		FailedURL   string `json:"failed_url"`
	}
	jsonUnbind struct {
		CustomerID string `json:"customer_id"`
		Binding    string `json:"binding"`
		Reason     string `json:"reason"`
	}
	jsonCharge struct {
		Charge         string     `json:"charge"`
		Occurrence     time.Time  `json:"occurrence"`
		Attempt        int        `json:"attempt"`
		Binding        string     `json:"binding"`
		Amount         jsonAmount `json:"amount"`
		AmountMinor    int64      `json:"amount_minor"`
		Description    string     `json:"description"`
		IdempotencyKey string     `json:"idempotency_key"`
	}
	jsonAmount struct {
		Value    string `json:"value"`
		Currency string `json:"currency"`
	}
	jsonWaiting struct {
		Address string    `json:"address"`
		Until   time.Time `json:"until"`
		Reason  string    `json:"reason"`
	}
	jsonAwaiting struct {
		Address string `json:"address"`
		Link    string `json:"link"`
	}
	jsonProblem struct {
		Address  string `json:"address"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
		SNAPCode string `json:"snap_code"`
	}
	jsonResolution struct {
		Address        string `json:"address"`
		IdempotencyKey string `json:"idempotency_key"`
		Status         string `json:"status"`
		Detail         string `json:"detail"`
	}
	jsonRemoved struct {
		Address string `json:"address"`
	}
	jsonSummary struct {
		// Refunds counts every change, of every kind, as it did in 1.0,
		// so that a 1.x consumer gating on it still sees every call.
		// ByKind.Refund is the number of refunds.
		Refunds    int       `json:"refunds"`
		Changes    int       `json:"changes"`
		ByKind     jsonKinds `json:"by_kind"`
		Waiting    int       `json:"waiting"`
		Awaiting   int       `json:"awaiting"`
		Deferred   int       `json:"deferred"`
		Errors     int       `json:"errors"`
		Unresolved int       `json:"unresolved"`
		UpToDate   int       `json:"up_to_date"`
		Moved      int       `json:"moved"`
		OverLimit  int       `json:"over_limit"`
	}
	jsonKinds struct {
		Refund int `json:"refund"`
		Bind   int `json:"bind"`
		Unbind int `json:"unbind"`
		Charge int `json:"charge"`
	}
)

// RenderJSON writes the plan as the documented, versioned JSON document of
// plan -json and show -json (cmd/ddctl/json-format.md), in Terraform's
// habits (format_version, resource_changes, applyable). Each change carries
// the fields of its kind. Amounts are DOKU's decimal string and minor
// units, never floats; times are RFC 3339 in UTC whatever opts.Location
// says; a phone is masked (principle 5, docs/principles.md). It is not the
// saved-plan format: ReadPlan reads only what WritePlan writes.
func RenderJSON(w io.Writer, p *Plan, opts RenderOptions) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(jsonDocument(p))
}

func jsonDocument(p *Plan) jsonPlan {
	d := jsonPlan{
		FormatVersion:   JSONFormatVersion,
		CreatedAt:       p.CreatedAt.UTC(),
		At:              p.At.UTC(),
		Lineage:         p.Lineage,
		Serial:          p.Serial,
		SpecDigest:      p.SpecDigest,
		Applyable:       len(p.Errors) == 0 && len(p.OverLimit) == 0 && !p.ReviewOnly,
		ResourceChanges: make([]jsonChange, 0, len(p.Actions)),
		Waiting:         make([]jsonWaiting, 0, len(p.Waiting)),
		Awaiting:        make([]jsonAwaiting, 0, len(p.Awaiting)),
		Deferred:        jsonProblems(p.Deferred),
		Errors:          jsonProblems(p.Errors),
		Unresolved:      jsonProblems(p.Unresolved),
		Resolved:        make([]jsonResolution, 0, len(p.Resolved)),
		Removed:         make([]jsonRemoved, 0, len(p.Removed)),
		Noted:           jsonProblems(p.Noted),
		Generation:      p.Generation,
		Moved:           make([]jsonMoved, 0, len(p.Moved)),
		Verified:        make([]jsonRemoved, 0, len(p.Verified)),
		OverLimit:       make([]jsonLimit, 0, len(p.OverLimit)),
		Summary: jsonSummary{
			Refunds:    len(p.Actions),
			Changes:    len(p.Actions),
			Waiting:    len(p.Waiting),
			Awaiting:   len(p.Awaiting),
			Deferred:   len(p.Deferred),
			Errors:     len(p.Errors),
			Unresolved: len(p.Unresolved),
			UpToDate:   p.Converged,
			Moved:      len(p.Moved),
			OverLimit:  len(p.OverLimit),
		},
	}
	for _, m := range p.Moved {
		d.Moved = append(d.Moved, jsonMoved(m))
	}
	for _, a := range p.Verified {
		d.Verified = append(d.Verified, jsonRemoved{Address: a})
	}
	for _, l := range p.OverLimit {
		d.OverLimit = append(d.OverLimit, jsonLimit{Limit: l.Limit, Max: jsonAmountOf(l.Max), MaxMinor: int64(l.Max),
			Total: jsonAmountOf(l.Total), TotalMinor: int64(l.Total), BeforeMinor: int64(l.Before), Instances: append([]string{}, l.Instances...)})
	}
	for _, a := range p.Actions {
		reason := ReasonCreate
		if a.Resend {
			reason = ReasonResendNotReceived
		}
		actions := []string{"create"}
		if a.Kind == ActionUnbind {
			actions = []string{"delete"} // the binding goes away
		}
		d.ResourceChanges = append(d.ResourceChanges, jsonChange{
			Address:      a.Address,
			Kind:         string(a.Kind),
			ActionReason: reason,
			Change:       jsonChangeBody{Actions: actions, After: jsonAfter(a)},
		})
		switch a.Kind {
		case ActionRefund:
			d.Summary.ByKind.Refund++
		case ActionBind:
			d.Summary.ByKind.Bind++
		case ActionUnbind:
			d.Summary.ByKind.Unbind++
		case ActionCharge:
			d.Summary.ByKind.Charge++
		}
	}
	for _, wt := range p.Waiting {
		d.Waiting = append(d.Waiting, jsonWaiting{Address: wt.Address, Until: wt.Until.UTC(), Reason: wt.Reason})
	}
	for _, aw := range p.Awaiting {
		d.Awaiting = append(d.Awaiting, jsonAwaiting{Address: aw.Address, Link: aw.Link})
	}
	for _, r := range p.Resolved {
		d.Resolved = append(d.Resolved, jsonResolution{Address: r.Address, IdempotencyKey: r.Key,
			Status: string(r.Status), Detail: r.Detail})
	}
	for _, addr := range p.Removed {
		d.Removed = append(d.Removed, jsonRemoved{Address: addr})
	}
	return d
}

// jsonAfter is what an action sends, in the fields of its kind. It never
// holds the phone unmasked: the document is for scripts and logs.
func jsonAfter(a Action) any {
	switch a.Kind {
	case ActionBind:
		b := jsonBind{CustomerID: a.CustomerID, MaskedPhone: MaskPhone(a.Phone)}
		if a.BindRequest != nil {
			b.SuccessURL, b.FailedURL = a.BindRequest.SuccessURL, a.BindRequest.FailedURL
		}
		return b
	case ActionUnbind:
		return jsonUnbind{CustomerID: a.CustomerID, Binding: a.Binding, Reason: a.Reason}
	case ActionCharge:
		return jsonCharge{
			Charge:         a.Charge,
			Occurrence:     a.Occurrence.UTC(),
			Attempt:        a.Attempt,
			Binding:        a.Binding,
			Amount:         jsonAmountOf(a.Amount),
			AmountMinor:    int64(a.Amount),
			Description:    a.Reason,
			IdempotencyKey: a.Key,
		}
	}
	return jsonRefund{
		Payment:        a.Payment,
		Amount:         jsonAmountOf(a.Amount),
		AmountMinor:    int64(a.Amount),
		Reason:         a.Reason,
		Binding:        a.Binding,
		IdempotencyKey: a.Key,
	}
}

func jsonAmountOf(a money.Amount) jsonAmount {
	return jsonAmount{Value: a.Value(), Currency: money.Currency}
}

func jsonProblems(ps []Problem) []jsonProblem {
	out := make([]jsonProblem, 0, len(ps))
	for _, pr := range ps {
		out = append(out, jsonProblem{Address: pr.Address, Summary: pr.Summary, Detail: pr.Detail, SNAPCode: pr.Code})
	}
	return out
}
