package reconcile

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/spec"
)

// RenderOptions adjust how a plan is shown; they never change the plan.
type RenderOptions struct {
	Location *time.Location // zone for times shown; UTC when nil
}

// RenderText writes the plan for a person, in Terraform's habits: one block
// per action, then what waits, what is wrong, and a summary line.
func RenderText(w io.Writer, p *Plan, opts RenderOptions) error {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	b := &strings.Builder{}
	if len(p.Targets) > 0 {
		fmt.Fprintf(b, "Warning: targeting is in effect: only %s is planned; the rest of the configuration is\nneither refreshed nor applied. -target is for exceptional cases, not routine use.\n\n",
			strings.Join(p.Targets, ", "))
	}
	for _, r := range p.Resolved {
		fmt.Fprintf(b, "%s: earlier request %s: %s\n", r.Address, r.Status, r.Detail)
	}
	if len(p.Resolved) > 0 {
		b.WriteString("\n")
	}
	if len(p.OverLimit) > 0 {
		b.WriteString("Error: this plan is over settings.limits, so apply sends nothing of it:\n")
		for _, l := range p.OverLimit {
			fmt.Fprintf(b, "  %s\n", l.Error())
		}
		b.WriteString("  If the amounts are right, apply with -override-limits=\"REASON\" (the reason is recorded in the history);\n  otherwise correct the configuration.\n\n")
	}
	if len(p.Moved) > 0 {
		b.WriteString("Moved in the state (no call):\n")
		for _, m := range p.Moved {
			fmt.Fprintf(b, "  # %s has moved to %s (%s)\n", m.From, m.To, plural(m.Entries, "entry", "entries"))
		}
		b.WriteString("\n")
	}
	switch {
	case len(p.Actions) == 0 && len(p.Moved) == 0 && len(p.Errors) > 0:
		fmt.Fprintf(b, "No call planned: %s, below.\n", plural(len(p.Errors), "error", "errors"))
	case len(p.Actions) == 0 && len(p.Moved) == 0:
		b.WriteString("No changes. DOKU and the state match the configuration.\n")
	case len(p.Actions) == 0:
		b.WriteString("No call to DOKU.\n")
	default:
		b.WriteString("ddctl will make the following calls:\n")
		for _, a := range p.Actions {
			verb := "will be sent"
			if a.Resend {
				verb = "will be sent again (DOKU has no record of the earlier request; same key)"
			}
			switch a.Kind {
			case ActionBind:
				fmt.Fprintf(b, "\n  # %s will be requested (the customer confirms with OTP and PIN)\n", a.Address)
				fmt.Fprintf(b, "  + bind {\n")
				attr(b, "customer_id", strconv.Quote(a.CustomerID))
				attr(b, "phone", MaskPhone(a.Phone))
				b.WriteString("    }\n")
				continue
			case ActionCharge:
				fmt.Fprintf(b, "\n  # %s will be charged (attempt %d; the customer confirms with OTP and PIN)\n", a.Address, a.Attempt)
				fmt.Fprintf(b, "  + charge {\n")
				attr(b, "binding", a.Binding)
				attr(b, "amount", a.Amount.String())
				if a.Reason != "" {
					attr(b, "description", strconv.Quote(a.Reason))
				}
				attr(b, "partner_reference_no", strconv.Quote(a.Key))
				b.WriteString("    }\n")
				continue
			case ActionUnbind:
				fmt.Fprintf(b, "\n  # %s will remove %s\n", a.Address, a.Binding)
				fmt.Fprintf(b, "  - unbind {\n")
				attr(b, "customer_id", strconv.Quote(a.CustomerID))
				if a.Reason != "" {
					attr(b, "reason", strconv.Quote(a.Reason))
				}
				b.WriteString("    }\n")
				continue
			}
			fmt.Fprintf(b, "\n  # %s %s\n", a.Address, verb)
			fmt.Fprintf(b, "  + %s {\n", a.Kind)
			attr(b, "payment", strconv.Quote(a.Payment))
			attr(b, "amount", a.Amount.String())
			if a.Reason != "" {
				attr(b, "reason", strconv.Quote(a.Reason))
			}
			attr(b, "payer", a.Binding)
			attr(b, "partner_refund_no", strconv.Quote(a.Key))
			b.WriteString("    }\n")
		}
	}
	if len(p.Waiting) > 0 {
		b.WriteString("\nWaiting (no call yet):\n")
		for _, wt := range p.Waiting {
			switch {
			case wt.Until.IsZero():
				fmt.Fprintf(b, "  %s: %s\n", wt.Address, wt.Reason)
			case wt.Reason != "":
				fmt.Fprintf(b, "  %s: %s, not before %s\n", wt.Address, wt.Reason, wt.Until.In(loc).Format("2006-01-02 15:04 -07:00"))
			default:
				fmt.Fprintf(b, "  %s: not before %s\n", wt.Address, wt.Until.In(loc).Format("2006-01-02 15:04 -07:00"))
			}
		}
	}
	if len(p.Deferred) > 0 {
		b.WriteString("\nDeferred (no payment request):\n")
		for _, d := range p.Deferred {
			fmt.Fprintf(b, "  %s: %s: %s\n", d.Address, d.Summary, d.Detail)
		}
	}
	if len(p.Awaiting) > 0 {
		b.WriteString("\nAwaiting the customer (OTP and PIN at the link):\n")
		for _, a := range p.Awaiting {
			fmt.Fprintf(b, "  %s: %s\n", a.Address, a.Link)
		}
	}
	if len(p.Unresolved) > 0 {
		b.WriteString("\nUnresolved (no call until DOKU says what happened):\n")
		for _, u := range p.Unresolved {
			fmt.Fprintf(b, "  %s: %s: %s\n", u.Address, u.Summary, u.Detail)
		}
	}
	if len(p.Errors) > 0 {
		b.WriteString("\nErrors (no call for these):\n")
		for _, e := range p.Errors {
			fmt.Fprintf(b, "  %s: %s\n", e.Address, e.Summary)
			if e.Detail != "" {
				fmt.Fprintf(b, "    %s\n", e.Detail)
			}
		}
	}
	if len(p.Removed) > 0 {
		fmt.Fprintf(b, "\nNo longer in configuration (no call): %s\n", strings.Join(p.Removed, ", "))
	}
	if len(p.Noted) > 0 {
		b.WriteString("\nNoted (no call):\n")
		for _, n := range p.Noted {
			fmt.Fprintf(b, "  %s: %s\n", n.Address, n.Summary)
		}
	}
	if len(p.Verified) > 0 {
		fmt.Fprintf(b, "\nAsked DOKU first (the state cannot vouch for them: it is new, or was restored): %s\n", strings.Join(p.Verified, ", "))
	}
	if p.ReviewOnly {
		fmt.Fprintf(b, "\n%s\n", withoutSecretsNote(p))
	}
	fmt.Fprintf(b, "\n%s\n", Summary(p))
	_, err := io.WriteString(w, b.String())
	return err
}

// withoutSecretsNote says what a plan made without customers' secrets
// could not check.
func withoutSecretsNote(p *Plan) string {
	s := "Made without customers' secrets (no state key), for review: pending bindings were not looked at"
	if n := len(p.Unchecked); n > 0 {
		s += fmt.Sprintf(", and the customer's balance of %s was not asked (%s): the plan that is applied asks, and defers a charge the balance does not cover",
			plural(n, "charge", "charges"), strings.Join(p.Unchecked, ", "))
	}
	return s + ". It cannot be saved or applied."
}

func attr(b *strings.Builder, name, value string) {
	fmt.Fprintf(b, "      + %-20s = %s\n", name, value)
}

// Summary is the plan's one-line summary.
func Summary(p *Plan) string {
	counts := map[ActionKind]int{}
	for _, a := range p.Actions {
		counts[a.Kind]++
	}
	calls := []string{plural(counts[ActionRefund], "refund", "refunds")}
	if n := counts[ActionCharge]; n > 0 {
		calls = append(calls, plural(n, "charge", "charges"))
	}
	if n := counts[ActionBind]; n > 0 {
		calls = append(calls, plural(n, "bind", "binds"))
	}
	if n := counts[ActionUnbind]; n > 0 {
		calls = append(calls, plural(n, "unbind", "unbinds"))
	}
	parts := []string{fmt.Sprintf("Plan: %s.", strings.Join(calls, ", "))}
	if n := len(p.Moved); n > 0 {
		parts = append(parts, fmt.Sprintf("%d moved.", n))
	}
	if n := len(p.OverLimit); n > 0 {
		parts = append(parts, fmt.Sprintf("Over %s: nothing will be sent.", plural(n, "limit", "limits")))
	}
	if n := len(p.Deferred); n > 0 {
		parts = append(parts, fmt.Sprintf("%s deferred (insufficient balance).", plural(n, "charge", "charges")))
	}
	if n := len(p.Awaiting); n > 0 {
		parts = append(parts, fmt.Sprintf("%d awaiting the customer.", n))
	}
	if n := len(p.Waiting); n > 0 {
		parts = append(parts, fmt.Sprintf("%d waiting.", n))
	}
	if n := len(p.Unresolved); n > 0 {
		parts = append(parts, fmt.Sprintf("%d unresolved.", n))
	}
	if n := len(p.Errors); n > 0 {
		parts = append(parts, plural(n, "error", "errors")+".")
	}
	parts = append(parts, fmt.Sprintf("%d up to date.", p.Converged))
	return strings.Join(parts, " ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// RenderResultLine is the progress line of one action.
func RenderResultLine(r ActionResult) string {
	a := r.Action
	switch {
	case r.Status == ResultSucceeded && a.Kind == ActionBind:
		return fmt.Sprintf("%s: requested; the customer (%s) confirms at %s", a.Address, MaskPhone(a.Phone), r.Link)
	case r.Status == ResultSucceeded && a.Kind == ActionCharge:
		return fmt.Sprintf("%s: %s requested; the customer confirms at %s", a.Address, a.Amount, r.Link)
	case r.Status == ResultSucceeded && a.Kind == ActionUnbind:
		return fmt.Sprintf("%s: %s unbound", a.Address, a.Binding)
	}
	switch r.Status {
	case ResultSucceeded:
		return fmt.Sprintf("%s: refunded %s of %s (refundNo %s)", a.Address, a.Amount, strconv.Quote(a.Payment), r.RefundNo)
	case ResultFailed:
		return fmt.Sprintf("%s: failed: DOKU answered %s %s", a.Address, r.Code, r.Message)
	case ResultDeferred:
		return fmt.Sprintf("%s: deferred: %s (nothing happened; the next apply sends it again)", a.Address, describe(r))
	case ResultUnknown:
		return fmt.Sprintf("%s: outcome unknown: %s (the next run asks DOKU before sending anything)", a.Address, describe(r))
	}
	return fmt.Sprintf("%s: skipped: %s", a.Address, r.Message)
}

func describe(r ActionResult) string {
	if r.Code != "" {
		return r.Code + " " + r.Message
	}
	return r.Message
}

// RenderResultSummary writes the final summary of an apply. Its headline
// says what happened: "Apply complete!" only when every call succeeded;
// "Apply interrupted!" when the apply was stopped before every call
// started; "Apply finished with errors!" otherwise.
func RenderResultSummary(w io.Writer, r *ApplyResult, interrupted bool) error {
	headline := "Apply complete!"
	switch {
	case interrupted:
		headline = "Apply interrupted!"
	case r.Count(ResultSucceeded) != len(r.Results):
		headline = "Apply finished with errors!"
	}
	_, err := fmt.Fprintf(w, "%s Calls: %d succeeded, %d failed, %d deferred, %d unknown, %d skipped.\n", headline,
		r.Count(ResultSucceeded), r.Count(ResultFailed), r.Count(ResultDeferred), r.Count(ResultUnknown), r.Count(ResultSkipped))
	return err
}

// A saved plan (plan -out) is a contract: apply makes exactly its calls,
// or none. The file is {"signature":"hmac-sha256:HEX","plan":PLAN}: the
// signature is an HMAC-SHA256, under a key derived from the state key,
// of PLAN's bytes as they stand in the file, so that an edited plan (an
// action added, an amount changed) is refused before anything is read
// from it. Phone numbers are written masked; apply takes them from the
// configuration, which the plan's spec digest ties it to.
//
// plan -json and show -json render through RenderJSON, whose format is
// documented and versioned apart.

// signaturePrefix names the signature's algorithm in the file.
const signaturePrefix = "hmac-sha256:"

// Plan file errors, wrapped by PlanFile.Verify.
var (
	ErrPlanSignature = errors.New("the plan file's signature does not verify: it was changed after plan wrote it, or signed under another state key")
	ErrPlanUnsigned  = errors.New("the plan file is not signed: it was made without a state key")
)

// WritePlan writes a saved plan signed with key (nil: unsigned, for a
// local simulator only), its phone numbers masked.
func WritePlan(w io.Writer, p *Plan, key []byte) error {
	q := *p
	q.Actions = slices.Clone(p.Actions)
	for i := range q.Actions {
		if q.Actions[i].Phone != "" {
			q.Actions[i].Phone = MaskPhone(q.Actions[i].Phone)
		}
	}
	body, err := json.MarshalIndent(&q, "", "  ")
	if err != nil {
		return err
	}
	sig := ""
	if key != nil {
		sig = signaturePrefix + hex.EncodeToString(planMAC(key, body))
	}
	head, _ := json.Marshal(sig)
	_, err = fmt.Fprintf(w, "{\"signature\":%s,\"plan\":%s}\n", head, body)
	return err
}

func planMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// PlanFile is a saved plan as read, its signature not yet checked.
type PlanFile struct {
	Plan   *Plan
	Signed bool // it carries a signature; Verify checks it
	body   []byte
	sig    []byte
}

// ReadPlan reads what WritePlan wrote. It checks the form, not the
// signature: that is Verify's.
func ReadPlan(r io.Reader) (*PlanFile, error) {
	var env struct {
		Signature string          `json:"signature"`
		Plan      json.RawMessage `json:"plan"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Plan == nil {
		return nil, fmt.Errorf("read plan: not a plan file written by ddctl plan -out (%v)", cmp.Or(err, errors.New("no plan in it")))
	}
	f := &PlanFile{body: env.Plan}
	if env.Signature != "" {
		h, ok := strings.CutPrefix(env.Signature, signaturePrefix)
		sig, err := hex.DecodeString(h)
		if !ok || err != nil || len(sig) != sha256.Size {
			return nil, fmt.Errorf("read plan: the signature is not %sHEX of %d bytes", signaturePrefix, sha256.Size)
		}
		f.Signed, f.sig = true, sig
	}
	var p Plan
	pd := json.NewDecoder(bytes.NewReader(env.Plan))
	pd.DisallowUnknownFields()
	if err := pd.Decode(&p); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	if p.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("read plan: format version %q, this ddctl reads %q", p.FormatVersion, FormatVersion)
	}
	f.Plan = &p
	return f, nil
}

// Verify checks the plan's signature under key. With a nil key it
// accepts only an unsigned plan, and only when unsigned is true (a local
// simulator's state, which has no key).
func (f *PlanFile) Verify(key []byte, unsigned bool) error {
	switch {
	case key == nil && f.Signed:
		return fmt.Errorf("the plan file is signed, and checking it needs the state key it was made with: set DDCTL_STATE_KEY or DDCTL_STATE_KEY_FILE")
	case key == nil && !unsigned:
		return ErrPlanUnsigned
	case key == nil:
		return nil
	case !f.Signed:
		return fmt.Errorf("%w; with a state key set, only a signed plan applies", ErrPlanUnsigned)
	case !hmac.Equal(planMAC(key, f.body), f.sig):
		return ErrPlanSignature
	}
	return nil
}

// FillPhones puts back the phone numbers WritePlan masked: each bind
// takes its binding block's, which must mask to what the plan shows.
func (p *Plan) FillPhones(cfg *spec.Config) error {
	phones := map[string]string{}
	for _, b := range cfg.Bindings {
		phones[b.Address] = b.Phone
	}
	for i, a := range p.Actions {
		if a.Kind != ActionBind {
			continue
		}
		phone, ok := phones[a.Address]
		if !ok || MaskPhone(phone) != a.Phone {
			return fmt.Errorf("%s: the configuration's phone number is not the one the plan was made with; run plan again", a.Address)
		}
		p.Actions[i].Phone = phone
	}
	return nil
}

// ErrStalePlan is wrapped by CheckFresh's errors.
var ErrStalePlan = fmt.Errorf("saved plan is stale")

// MaxPlanAge is how old a saved plan may be when it is applied: what DOKU
// said when it was made (payments, refunds made elsewhere) ages too.
const MaxPlanAge = 7 * 24 * time.Hour

// Current is what a saved plan is checked against: the state and the
// configuration as they are when it is applied.
type Current struct {
	Lineage    string
	Serial     int64
	Generation int64 // the state's restore generation (state.Continuity)
	SpecDigest string
	Now        time.Time
}

// CheckFresh refuses a saved plan made against another state file, a state
// that was restored or changed since, or another configuration, one too
// old, and one made for a time still to come (plan -at), whose scheduled
// refunds are not due (principle 4, docs/principles.md).
func CheckFresh(p *Plan, cur Current) error {
	switch {
	case p.At.After(cur.Now.Add(time.Minute)):
		return fmt.Errorf("%w: it was evaluated for %s, which has not come yet (plan -at); run plan again without -at", ErrStalePlan, p.At.Format(time.RFC3339))
	case cur.Now.Sub(p.CreatedAt) > MaxPlanAge:
		return fmt.Errorf("%w: it was made %s, more than %s ago; run plan again", ErrStalePlan, p.CreatedAt.Format(time.RFC3339), MaxPlanAge)
	case p.Lineage != cur.Lineage:
		return fmt.Errorf("%w: it was made against another state file (lineage %s, this one is %s); run plan again", ErrStalePlan, p.Lineage, cur.Lineage)
	case p.Generation != cur.Generation:
		return fmt.Errorf("%w: the state was restored since it was made (generation %d, now %d), and what it says went back in time; a plan made before a restore never applies: run plan again", ErrStalePlan, p.Generation, cur.Generation)
	case p.Serial != cur.Serial:
		return fmt.Errorf("%w: the state changed since it was made (serial %d, now %d); run plan again", ErrStalePlan, p.Serial, cur.Serial)
	case p.SpecDigest != cur.SpecDigest:
		return fmt.Errorf("%w: the configuration changed since it was made; run plan again", ErrStalePlan)
	}
	return nil
}

// MaskPhone shows a phone number as 6281****7890 (principle 5, docs/principles.md):
// the one place output shows a phone.
func MaskPhone(p string) string {
	if len(p) < 9 {
		return "****"
	}
	return p[:4] + "****" + p[len(p)-4:]
}
