package reconcile_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/render")

// renderTime is when the fixture plans were made and evaluated for.
var renderTime = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// renderFixtures are fixed plans, one golden file per plan and format.
func renderFixtures() []struct {
	name string
	plan *reconcile.Plan
} {
	base := func() *reconcile.Plan {
		return &reconcile.Plan{
			FormatVersion: reconcile.FormatVersion,
			CreatedAt:     renderTime.Add(-30 * time.Second),
			At:            renderTime,
			Lineage:       "6f1c2a9e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
			Serial:        42,
			SpecDigest:    "sha256:9a1b2c3d4e5f",
			Actions:       []reconcile.Action{},
		}
	}
	none := base()
	none.Converged = 3

	mixed := base()
	mixed.Actions = []reconcile.Action{
		{Kind: reconcile.ActionRefund, Address: "refund.ord_7", Payment: "ORD-7", Amount: 15000000,
			Reason: "damaged in transit", Key: "TESTA1B2C3D4E5F60718293A4B5C6D7E8F90"},
		{Kind: reconcile.ActionRefund, Address: "refund.ord_8", Payment: "ORD-8", Amount: 2500050,
			Key: "TEST0F1E2D3C4B5A69788796A5B4C3D2E1F0"},
	}
	mixed.Waiting = []reconcile.Waiting{{Address: "refund.ord_9", Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}}
	mixed.Errors = []reconcile.Problem{{Address: "refund.ord_10", Summary: "payment not found", Code: "4045801",
		Detail: `DOKU knows no payment "ORD-10" (4045801 Transaction Not Found). Check the block's payment reference.`}}
	mixed.Removed = []string{"refund.ord_1"}
	mixed.Converged = 5

	resend := base()
	resend.Resolved = []reconcile.Resolution{{Address: "refund.ord_11", Key: "TESTB1B2C3D4E5F60718293A4B5C6D7E8F91",
		Status: state.OpNotReceived, Detail: "DOKU has no record of it"}}
	resend.Actions = []reconcile.Action{
		{Kind: reconcile.ActionRefund, Address: "refund.ord_11", Payment: "ORD-11", Amount: 9900000,
			Reason: "duplicate charge", Key: "TESTB1B2C3D4E5F60718293A4B5C6D7E8F91", Resend: true},
	}
	resend.Unresolved = []reconcile.Problem{{Address: "refund.ord_12", Summary: "outcome of an earlier request is unknown",
		Detail: "could not ask DOKU about it: timeout; it will be asked again next run"}}
	resend.Converged = 1

	// kinds has a call of every kind, and every list a charge or a binding
	// can be in.
	kinds := base()
	kinds.Actions = []reconcile.Action{
		{Kind: reconcile.ActionRefund, Address: "refund.newyear_back", Payment: "recurring_charge.newyear#2026-01-01T09:00+07:00",
			Amount: 15000000, Reason: "goodwill", Key: "TESTC1B2C3D4E5F60718293A4B5C6D7E8F92"},
		{Kind: reconcile.ActionBind, Address: "binding.alice", CustomerID: "cust-001", Phone: "6281234567890",
			BindRequest: &reconcile.BindRequest{SuccessURL: "https://shop.example/bind/ok", FailedURL: "https://shop.example/bind/failed",
				CustomerName: "Alice Example", Email: "alice@shop.example", DeviceModel: "server", OSType: "linux", ChannelID: "web"}},
		{Kind: reconcile.ActionUnbind, Address: "unbind.bob", CustomerID: "cust-002", Binding: "binding.bob", Reason: "account closed"},
		{Kind: reconcile.ActionCharge, Address: "recurring_charge.monthly#2026-11-23T09:00+07:00", Charge: "recurring_charge.monthly",
			Occurrence: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC), Attempt: 1, Amount: 15000000, Reason: "Monthly plan",
			Binding: "binding.carol", SuccessURL: "https://shop.example/pay/ok", FailedURL: "https://shop.example/pay/failed",
			Key: "TESTD1B2C3D4E5F60718293A4B5C6D7E8F93"},
		{Kind: reconcile.ActionCharge, Address: "recurring_charge.weekly#2026-11-16T09:00+07:00", Charge: "recurring_charge.weekly",
			Occurrence: time.Date(2026, 11, 16, 2, 0, 0, 0, time.UTC), Attempt: 2, Amount: 5000050,
			Binding: "binding.carol", Key: "TESTE1B2C3D4E5F60718293A4B5C6D7E8F94"},
	}
	kinds.Waiting = []reconcile.Waiting{
		{Address: "recurring_charge.dave_plan", Reason: "binding.dave is not active yet"},
		{Address: "recurring_charge.daily#2026-11-23T07:00+07:00", Until: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), Reason: "attempt 2 after failed"},
		{Address: "refund.later", Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
	}
	kinds.Awaiting = []reconcile.Awaiting{
		{Address: "binding.erin", Link: "https://sandbox.example/bind/confirm?ref=B_1&lang=id"},
		{Address: "recurring_charge.monthly#2026-10-23T09:00+07:00", Link: "https://sandbox.example/pay/confirm?ref=P_1"},
	}
	kinds.Deferred = []reconcile.Problem{{Address: "recurring_charge.big#2026-11-23T09:00+07:00", Summary: "insufficient balance",
		Detail: "the customer's balance is IDR 50,000.00; the charge is IDR 100,000.00. No payment request is sent; it is retried per retry."}}
	kinds.Removed = []string{"binding.old"}
	kinds.Converged = 2

	// guards has what keeps a money move's identity: a moved block, the
	// instances asked about after a restore, and a plan over the limits.
	guards := base()
	guards.Generation = 3
	guards.Moved = []reconcile.Move{
		{From: "recurring_charge.gym", To: "recurring_charge.gym_membership", Entries: 4},
		{From: "refund.batch", To: "refund.batch_2026", Block: true, Entries: 2},
	}
	guards.Verified = []string{"recurring_charge.gym_membership#2026-11-01T09:00+07:00", "refund.ord_20"}
	guards.Actions = []reconcile.Action{
		{Kind: reconcile.ActionRefund, Address: `refund.csv["A-1"]`, Payment: "ORD-21", Amount: 1500000000,
			Reason: "CSV in sen", Key: "TESTF1B2C3D4E5F60718293A4B5C6D7E8F95"},
		{Kind: reconcile.ActionRefund, Address: `refund.csv["A-2"]`, Payment: "ORD-22", Amount: 990000000,
			Key: "TESTF2B2C3D4E5F60718293A4B5C6D7E8F96"},
	}
	guards.OverLimit = []reconcile.LimitBreach{
		{Limit: "settings.limits.refund", Max: 500000000, Total: 1500000000, Instances: []string{`refund.csv["A-1"]`, `refund.csv["A-2"]`}},
		{Limit: "settings.limits.refunds_per_day", Max: 2000000000, Total: 2590000000, Before: 100000000, Instances: []string{`refund.csv["A-1"]`, `refund.csv["A-2"]`}},
	}
	guards.Errors = []reconcile.Problem{{Address: "recurring_charge.fitness", Summary: "looks like recurring_charge.gym renamed",
		Detail: "recurring_charge.fitness is new to the state, and recurring_charge.gym#2026-11-01T09:00+07:00 holds attempt 1 (succeeded) of the same occurrence."}}

	return []struct {
		name string
		plan *reconcile.Plan
	}{{"no_changes", none}, {"mixed", mixed}, {"resend", resend}, {"kinds", kinds}, {"guards", guards}}
}

// renderers are the plan renderers, all of one signature.
var renderers = []struct {
	ext    string
	render func(io.Writer, *reconcile.Plan, reconcile.RenderOptions) error
}{
	{"txt", reconcile.RenderText},
	{"json", reconcile.RenderJSON},
	{"md", reconcile.RenderMarkdown},
}

// golden compares got with testdata/render/name, or rewrites it with -update.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", "render", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func TestRenderGolden(t *testing.T) {
	for _, f := range renderFixtures() {
		for _, r := range renderers {
			t.Run(f.name+"."+r.ext, func(t *testing.T) {
				var buf bytes.Buffer
				if err := r.render(&buf, f.plan, reconcile.RenderOptions{}); err != nil {
					t.Fatalf("render: %v", err)
				}
				golden(t, f.name+"."+r.ext, buf.Bytes())
				// Rendering twice gives the same bytes.
				var again bytes.Buffer
				if err := r.render(&again, f.plan, reconcile.RenderOptions{}); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf.Bytes(), again.Bytes()) {
					t.Errorf("second rendering differs from the first")
				}
			})
		}
	}
}

// jsonDoc mirrors cmd/ddctl/json-format.md, to decode RenderJSON's output
// strictly. A change's after is decoded by its kind (decodeAfter).
type jsonDoc struct {
	FormatVersion   string    `json:"format_version"`
	DDCTLVersion    string    `json:"ddctl_version"`
	CreatedAt       time.Time `json:"created_at"`
	At              time.Time `json:"at"`
	Lineage         string    `json:"lineage"`
	Serial          int64     `json:"serial"`
	SpecDigest      string    `json:"spec_digest"`
	Applyable       bool      `json:"applyable"`
	ResourceChanges []struct {
		Address      string `json:"address"`
		Kind         string `json:"kind"`
		ActionReason string `json:"action_reason"`
		Change       struct {
			Actions []string        `json:"actions"`
			After   json.RawMessage `json:"after"`
		} `json:"change"`
	} `json:"resource_changes"`
	Waiting []struct {
		Address string    `json:"address"`
		Until   time.Time `json:"until"`
		Reason  string    `json:"reason"`
	} `json:"waiting"`
	Awaiting []struct {
		Address string `json:"address"`
		Link    string `json:"link"`
	} `json:"awaiting"`
	Deferred   []jsonProblem `json:"deferred"`
	Errors     []jsonProblem `json:"errors"`
	Unresolved []jsonProblem `json:"unresolved"`
	Resolved   []struct {
		Address        string `json:"address"`
		IdempotencyKey string `json:"idempotency_key"`
		Status         string `json:"status"`
		Detail         string `json:"detail"`
	} `json:"resolved"`
	Removed []struct {
		Address string `json:"address"`
	} `json:"removed"`
	Noted      []jsonProblem `json:"noted"`
	Generation int64         `json:"generation"`
	Moved      []struct {
		From    string `json:"from"`
		To      string `json:"to"`
		Block   bool   `json:"block"`
		Entries int    `json:"entries"`
	} `json:"moved"`
	Verified []struct {
		Address string `json:"address"`
	} `json:"verified"`
	OverLimit []struct {
		Limit       string     `json:"limit"`
		Max         jsonAmount `json:"max"`
		MaxMinor    int64      `json:"max_minor"`
		Total       jsonAmount `json:"total"`
		TotalMinor  int64      `json:"total_minor"`
		BeforeMinor int64      `json:"before_minor"`
		Instances   []string   `json:"instances"`
	} `json:"over_limit"`
	Summary struct {
		Refunds int `json:"refunds"`
		Changes int `json:"changes"`
		ByKind  struct {
			Refund int `json:"refund"`
			Bind   int `json:"bind"`
			Unbind int `json:"unbind"`
			Charge int `json:"charge"`
		} `json:"by_kind"`
		Waiting    int `json:"waiting"`
		Awaiting   int `json:"awaiting"`
		Deferred   int `json:"deferred"`
		Errors     int `json:"errors"`
		Unresolved int `json:"unresolved"`
		UpToDate   int `json:"up_to_date"`
		Moved      int `json:"moved"`
		OverLimit  int `json:"over_limit"`
	} `json:"summary"`
}

type jsonAmount struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// The after of each kind of change.
type (
	jsonRefundAfter struct {
		Payment        string     `json:"payment"`
		Amount         jsonAmount `json:"amount"`
		AmountMinor    int64      `json:"amount_minor"`
		Reason         string     `json:"reason"`
		Binding        string     `json:"binding"`
		IdempotencyKey string     `json:"idempotency_key"`
	}
	jsonBindAfter struct {
		CustomerID  string `json:"customer_id"`
		MaskedPhone string `json:"masked_phone"`
		SuccessURL  string `json:"success_url"`
		FailedURL   string `json:"failed_url"`
	}
	jsonUnbindAfter struct {
		CustomerID string `json:"customer_id"`
		Binding    string `json:"binding"`
		Reason     string `json:"reason"`
	}
	jsonChargeAfter struct {
		Charge         string     `json:"charge"`
		Occurrence     time.Time  `json:"occurrence"`
		Attempt        int        `json:"attempt"`
		Binding        string     `json:"binding"`
		Amount         jsonAmount `json:"amount"`
		AmountMinor    int64      `json:"amount_minor"`
		Description    string     `json:"description"`
		IdempotencyKey string     `json:"idempotency_key"`
	}
)

// decodeAfter decodes a change's after strictly into T, and checks that
// every field of T is present: each kind has exactly its own fields.
func decodeAfter[T any](tb testing.TB, raw json.RawMessage) T {
	tb.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("decode after as %T: %v\n%s", v, err, raw)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		tb.Fatal(err)
	}
	typ := reflect.TypeOf(v)
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if _, ok := keys[name]; !ok {
			tb.Errorf("after of %T has no %q:\n%s", v, name, raw)
		}
	}
	return v
}

type jsonProblem struct {
	Address  string `json:"address"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail"`
	SNAPCode string `json:"snap_code"`
}

func decodeJSONDoc(tb testing.TB, p *reconcile.Plan) (jsonDoc, map[string]any) {
	tb.Helper()
	var buf bytes.Buffer
	if err := reconcile.RenderJSON(&buf, p, reconcile.RenderOptions{Location: time.FixedZone("WIB", 7*3600)}); err != nil {
		tb.Fatalf("RenderJSON: %v", err)
	}
	var d jsonDoc
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		tb.Fatalf("decode: %v\n%s", err, buf.String())
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		tb.Fatal(err)
	}
	return d, raw
}

func TestRenderJSON(t *testing.T) {
	fx := renderFixtures()
	t.Run("Mixed", func(t *testing.T) {
		d, raw := decodeJSONDoc(t, fx[1].plan)
		if d.FormatVersion != "1.2" || reconcile.JSONFormatVersion != "1.2" {
			t.Fatalf("FormatVersion=%q, want %q", d.FormatVersion, "1.2")
		}
		if _, ok := raw["ddctl_version"]; ok {
			t.Errorf("ddctl_version is present; it is not known to the renderer")
		}
		if d.Applyable {
			t.Errorf("Applyable=true with an error in the plan")
		}
		if !d.At.Equal(renderTime) || d.At.Location() != time.UTC || d.CreatedAt.Location() != time.UTC {
			t.Errorf("At=%v CreatedAt=%v, want UTC times whatever the location", d.At, d.CreatedAt)
		}
		if d.Lineage != fx[1].plan.Lineage || d.Serial != 42 || d.SpecDigest != "sha256:9a1b2c3d4e5f" {
			t.Errorf("Lineage=%q Serial=%d SpecDigest=%q", d.Lineage, d.Serial, d.SpecDigest)
		}
		if len(d.ResourceChanges) != 2 {
			t.Fatalf("len(ResourceChanges)=%d, want 2", len(d.ResourceChanges))
		}
		rc := d.ResourceChanges[0]
		if rc.Address != "refund.ord_7" || rc.Kind != "refund" || rc.ActionReason != "create" ||
			!cmp.Equal(rc.Change.Actions, []string{"create"}) {
			t.Errorf("ResourceChanges[0]=%+v", rc)
		}
		after := decodeAfter[jsonRefundAfter](t, rc.Change.After)
		if after.Payment != "ORD-7" || after.Amount.Value != "150000.00" || after.Amount.Currency != "IDR" ||
			after.AmountMinor != 15000000 || after.Reason != "damaged in transit" ||
			after.IdempotencyKey != "TESTA1B2C3D4E5F60718293A4B5C6D7E8F90" {
			t.Errorf("After=%+v", after)
		}
		if v := decodeAfter[jsonRefundAfter](t, d.ResourceChanges[1].Change.After).Amount.Value; v != "25000.50" {
			t.Errorf("Amount.Value=%q, want %q", v, "25000.50")
		}
		// Amounts are never floats: amount is an object, amount_minor an integer.
		amt := raw["resource_changes"].([]any)[0].(map[string]any)["change"].(map[string]any)["after"].(map[string]any)
		if _, ok := amt["amount"].(map[string]any); !ok {
			t.Errorf("amount=%#v, want an object", amt["amount"])
		}
		if len(d.Waiting) != 1 || d.Waiting[0].Address != "refund.ord_9" || !d.Waiting[0].Until.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("Waiting=%+v", d.Waiting)
		}
		wantErr := []jsonProblem{{Address: "refund.ord_10", Summary: "payment not found", SNAPCode: "4045801",
			Detail: fx[1].plan.Errors[0].Detail}}
		if diff := cmp.Diff(wantErr, d.Errors); diff != "" {
			t.Errorf("Errors (-want +got):\n%s", diff)
		}
		if len(d.Removed) != 1 || d.Removed[0].Address != "refund.ord_1" {
			t.Errorf("Removed=%+v", d.Removed)
		}
		if s := d.Summary; s.Refunds != 2 || s.Changes != 2 || s.ByKind.Refund != 2 || s.Waiting != 1 || s.Errors != 1 ||
			s.Unresolved != 0 || s.UpToDate != 5 {
			t.Errorf("Summary=%+v", s)
		}
	})
	t.Run("Resend", func(t *testing.T) {
		d, _ := decodeJSONDoc(t, fx[2].plan)
		if !d.Applyable {
			t.Errorf("Applyable=false with no error")
		}
		if len(d.ResourceChanges) != 1 || d.ResourceChanges[0].ActionReason != "resend_not_received" {
			t.Fatalf("ResourceChanges=%+v, want one resend_not_received", d.ResourceChanges)
		}
		after := decodeAfter[jsonRefundAfter](t, d.ResourceChanges[0].Change.After)
		if len(d.Resolved) != 1 || d.Resolved[0].Status != "not_received" || d.Resolved[0].IdempotencyKey != after.IdempotencyKey {
			t.Errorf("Resolved=%+v", d.Resolved)
		}
		if len(d.Unresolved) != 1 || d.Summary.Unresolved != 1 {
			t.Errorf("Unresolved=%+v Summary=%+v", d.Unresolved, d.Summary)
		}
	})
	t.Run("EmptyListsNotNull", func(t *testing.T) {
		_, raw := decodeJSONDoc(t, fx[0].plan)
		for _, k := range []string{"resource_changes", "waiting", "awaiting", "deferred", "errors", "unresolved", "resolved", "removed"} {
			if l, ok := raw[k].([]any); !ok || len(l) != 0 {
				t.Errorf("%s=%#v, want []", k, raw[k])
			}
		}
		// A plan made in memory may have nil Actions.
		p := *fx[0].plan
		p.Actions = nil
		_, raw = decodeJSONDoc(t, &p)
		if l, ok := raw["resource_changes"].([]any); !ok || len(l) != 0 {
			t.Errorf("resource_changes=%#v, want []", raw["resource_changes"])
		}
	})
}

// Each kind of change carries its own fields; charges and bindings appear
// in awaiting, deferred and waiting.
func TestRenderJSONKinds(t *testing.T) {
	p := renderFixtures()[3].plan
	d, raw := decodeJSONDoc(t, p)
	if len(d.ResourceChanges) != 5 {
		t.Fatalf("len(ResourceChanges)=%d, want 5", len(d.ResourceChanges))
	}
	kinds := []string{"refund", "bind", "unbind", "charge", "charge"}
	for i, rc := range d.ResourceChanges {
		if rc.Kind != kinds[i] || rc.Address != p.Actions[i].Address || rc.ActionReason != "create" {
			t.Errorf("ResourceChanges[%d]: Kind=%q Address=%q ActionReason=%q, want %q %q create",
				i, rc.Kind, rc.Address, rc.ActionReason, kinds[i], p.Actions[i].Address)
		}
		want := []string{"create"}
		if rc.Kind == "unbind" {
			want = []string{"delete"}
		}
		if !cmp.Equal(rc.Change.Actions, want) {
			t.Errorf("ResourceChanges[%d].Change.Actions=%v, want %v", i, rc.Change.Actions, want)
		}
	}

	refund := decodeAfter[jsonRefundAfter](t, d.ResourceChanges[0].Change.After)
	if refund.Payment != "recurring_charge.newyear#2026-01-01T09:00+07:00" || refund.AmountMinor != 15000000 ||
		refund.Reason != "goodwill" || refund.IdempotencyKey != "TESTC1B2C3D4E5F60718293A4B5C6D7E8F92" {
		t.Errorf("refund after=%+v", refund)
	}

	bind := decodeAfter[jsonBindAfter](t, d.ResourceChanges[1].Change.After)
	wantBind := jsonBindAfter{CustomerID: "cust-001", MaskedPhone: "6281****7890",
		SuccessURL: "https://shop.example/bind/ok", FailedURL: "https://shop.example/bind/failed"}
	if diff := cmp.Diff(wantBind, bind); diff != "" {
		t.Errorf("bind after (-want +got):\n%s", diff)
	}

	unbind := decodeAfter[jsonUnbindAfter](t, d.ResourceChanges[2].Change.After)
	if diff := cmp.Diff(jsonUnbindAfter{CustomerID: "cust-002", Binding: "binding.bob", Reason: "account closed"}, unbind); diff != "" {
		t.Errorf("unbind after (-want +got):\n%s", diff)
	}

	charge := decodeAfter[jsonChargeAfter](t, d.ResourceChanges[3].Change.After)
	wantCharge := jsonChargeAfter{Charge: "recurring_charge.monthly", Occurrence: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC),
		Attempt: 1, Binding: "binding.carol", Amount: jsonAmount{Value: "150000.00", Currency: "IDR"}, AmountMinor: 15000000,
		Description: "Monthly plan", IdempotencyKey: "TESTD1B2C3D4E5F60718293A4B5C6D7E8F93"}
	if diff := cmp.Diff(wantCharge, charge); diff != "" {
		t.Errorf("charge after (-want +got):\n%s", diff)
	}
	if charge.Occurrence.Location() != time.UTC {
		t.Errorf("Occurrence=%v, want UTC whatever the location", charge.Occurrence)
	}
	retry := decodeAfter[jsonChargeAfter](t, d.ResourceChanges[4].Change.After)
	if retry.Attempt != 2 || retry.Amount.Value != "50000.50" || retry.AmountMinor != 5000050 || retry.Description != "" {
		t.Errorf("second charge after=%+v", retry)
	}
	// An occurrence is an RFC 3339 string, an attempt an integer.
	after := raw["resource_changes"].([]any)[3].(map[string]any)["change"].(map[string]any)["after"].(map[string]any)
	if after["occurrence"] != "2026-11-23T02:00:00Z" || after["attempt"] != 1.0 {
		t.Errorf("occurrence=%#v attempt=%#v", after["occurrence"], after["attempt"])
	}

	if len(d.Waiting) != 3 {
		t.Fatalf("Waiting=%+v, want 3", d.Waiting)
	}
	if w := d.Waiting[0]; w.Address != "recurring_charge.dave_plan" || !w.Until.IsZero() || w.Reason != "binding.dave is not active yet" {
		t.Errorf("Waiting[0]=%+v", w)
	}
	if w := d.Waiting[1]; !w.Until.Equal(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)) || w.Reason != "attempt 2 after failed" {
		t.Errorf("Waiting[1]=%+v", w)
	}
	if w := d.Waiting[2]; w.Reason != "" {
		t.Errorf("Waiting[2].Reason=%q, want \"\"", w.Reason)
	}
	if len(d.Awaiting) != 2 || d.Awaiting[0].Address != "binding.erin" ||
		d.Awaiting[0].Link != "https://sandbox.example/bind/confirm?ref=B_1&lang=id" ||
		d.Awaiting[1].Address != "recurring_charge.monthly#2026-10-23T09:00+07:00" {
		t.Errorf("Awaiting=%+v", d.Awaiting)
	}
	wantDeferred := []jsonProblem{{Address: "recurring_charge.big#2026-11-23T09:00+07:00", Summary: "insufficient balance",
		Detail: p.Deferred[0].Detail}}
	if diff := cmp.Diff(wantDeferred, d.Deferred); diff != "" {
		t.Errorf("Deferred (-want +got):\n%s", diff)
	}
	s := d.Summary
	if s.Refunds != 5 || s.Changes != 5 || s.ByKind.Refund != 1 || s.ByKind.Bind != 1 || s.ByKind.Unbind != 1 || s.ByKind.Charge != 2 ||
		s.Waiting != 3 || s.Awaiting != 2 || s.Deferred != 1 || s.Errors != 0 || s.Unresolved != 0 || s.UpToDate != 2 {
		t.Errorf("Summary=%+v", s)
	}
	if !d.Applyable {
		t.Errorf("Applyable=false with no error")
	}
}

// No renderer shows a phone unmasked, a customer's name or email, or
// anything like a binding's authCode or a token: the plan holds none of
// them (checked on its type), and the phone is masked.
func TestRenderNoSecrets(t *testing.T) {
	// The plan's types have no field a secret could be in.
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if seen[typ] || typ.Kind() != reflect.Struct || !strings.HasPrefix(typ.PkgPath(), "github.com/ddctl/ddctl/") {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := strings.ToLower(f.Name)
			if f.Type == reflect.TypeFor[secret.Value]() || strings.Contains(name, "auth") || strings.Contains(name, "token") ||
				strings.Contains(name, "secret") {
				t.Errorf("%s.%s (%s): a plan must hold no secret", path, f.Name, f.Type)
			}
			walk(f.Type, path+"."+f.Name)
		}
	}
	walk(reflect.TypeFor[reconcile.Plan](), "Plan")
	if !seen[reflect.TypeFor[reconcile.Action]()] || !seen[reflect.TypeFor[reconcile.BindRequest]()] {
		t.Fatalf("the walk did not reach Action and BindRequest")
	}

	p := renderFixtures()[3].plan
	for _, r := range renderers {
		var buf bytes.Buffer
		if err := r.render(&buf, p, reconcile.RenderOptions{}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, s := range []string{"6281234567890", "1234567", "Alice Example", "alice@shop.example"} {
			if strings.Contains(out, s) {
				t.Errorf("%s output shows %q", r.ext, s)
			}
		}
		masked := "6281****7890"
		if r.ext == "md" {
			masked = `6281\*\*\*\*7890`
		}
		if !strings.Contains(out, masked) {
			t.Errorf("%s output has no masked phone %q:\n%s", r.ext, masked, out)
		}
		if m := regexp.MustCompile(`(?i)auth_?code|token`).FindString(out); m != "" {
			t.Errorf("%s output holds %q", r.ext, m)
		}
	}
}

// The rendering is not a saved plan: ReadPlan still reads what WritePlan
// writes (phones masked), and refuses RenderJSON's document.
func TestRenderJSONIsNotASavedPlan(t *testing.T) {
	p := renderFixtures()[1].plan
	var saved bytes.Buffer
	key := bytes.Repeat([]byte{7}, 32)
	if err := reconcile.WritePlan(&saved, p, key); err != nil {
		t.Fatal(err)
	}
	back, err := reconcile.ReadPlan(&saved)
	if err != nil {
		t.Fatalf("ReadPlan(WritePlan): %v", err)
	}
	if err := back.Verify(key, false); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := *p
	want.Actions = slices.Clone(p.Actions)
	for i := range want.Actions {
		if want.Actions[i].Phone != "" {
			want.Actions[i].Phone = reconcile.MaskPhone(want.Actions[i].Phone)
		}
	}
	if diff := cmp.Diff(&want, back.Plan); diff != "" {
		t.Errorf("saved plan round trip (-want +got):\n%s", diff)
	}
	var rendered bytes.Buffer
	if err := reconcile.RenderJSON(&rendered, p, reconcile.RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := reconcile.ReadPlan(&rendered); err == nil || !strings.Contains(err.Error(), "read plan") {
		t.Errorf("ReadPlan(RenderJSON) err=%v, want a refusal", err)
	}
}

// The documentation's examples are the mixed and kinds goldens, it names
// the current version, and every key of the goldens is documented.
func TestJSONFormatDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "cmd", "ddctl", "json-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join("testdata", "render", "mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("```json\n"+string(example)+"```\n")) {
		t.Errorf("json-format.md's example is not testdata/render/mixed.json")
	}
	kinds, err := os.ReadFile(filepath.Join("testdata", "render", "kinds.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte("```json\n"+string(kinds)+"```\n")) {
		t.Errorf("json-format.md has no example that is testdata/render/kinds.json")
	}
	if v := "now `\"" + reconcile.JSONFormatVersion + "\"`"; !bytes.Contains(doc, []byte(v)) {
		t.Errorf("json-format.md does not give the version as %s", v)
	}
	for _, f := range renderFixtures() {
		var buf bytes.Buffer
		if err := reconcile.RenderJSON(&buf, f.plan, reconcile.RenderOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"([a-z_]+)":`).FindAllStringSubmatch(buf.String(), -1) {
			if !bytes.Contains(doc, []byte("`"+m[1]+"`")) {
				t.Errorf("field %q is not documented in json-format.md", m[1])
			}
		}
	}
}

// The summary's headline says what happened: complete only when every
// call succeeded, interrupted when the apply was stopped, errors
// otherwise.
func TestResultSummaryHeadline(t *testing.T) {
	ok := reconcile.ActionResult{Status: reconcile.ResultSucceeded}
	for _, tc := range []struct {
		name        string
		results     []reconcile.ActionResult
		interrupted bool
		want        string
	}{
		{"AllSucceeded", []reconcile.ActionResult{ok, ok}, false, "Apply complete! Calls: 2 succeeded, 0 failed, 0 deferred, 0 unknown, 0 skipped.\n"},
		{"OneFailed", []reconcile.ActionResult{ok, {Status: reconcile.ResultFailed}}, false, "Apply finished with errors! Calls: 1 succeeded, 1 failed, 0 deferred, 0 unknown, 0 skipped.\n"},
		{"AllFailed", []reconcile.ActionResult{{Status: reconcile.ResultFailed}, {Status: reconcile.ResultUnknown}}, false, "Apply finished with errors! Calls: 0 succeeded, 1 failed, 0 deferred, 1 unknown, 0 skipped.\n"},
		{"Interrupted", []reconcile.ActionResult{ok, {Status: reconcile.ResultSkipped}}, true, "Apply interrupted! Calls: 1 succeeded, 0 failed, 0 deferred, 0 unknown, 1 skipped.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := reconcile.RenderResultSummary(&b, &reconcile.ApplyResult{Results: tc.results}, tc.interrupted); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("summary %q, want %q", b.String(), tc.want)
			}
		})
	}
}
