package reconcile_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/reconcile"
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

	return []struct {
		name string
		plan *reconcile.Plan
	}{{"no_changes", none}, {"mixed", mixed}, {"resend", resend}}
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
// strictly.
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
			Actions []string `json:"actions"`
			After   struct {
				Payment string `json:"payment"`
				Amount  struct {
					Value    string `json:"value"`
					Currency string `json:"currency"`
				} `json:"amount"`
				AmountMinor    int64  `json:"amount_minor"`
				Reason         string `json:"reason"`
				IdempotencyKey string `json:"idempotency_key"`
			} `json:"after"`
		} `json:"change"`
	} `json:"resource_changes"`
	Waiting []struct {
		Address string    `json:"address"`
		Until   time.Time `json:"until"`
	} `json:"waiting"`
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
	Summary struct {
		Refunds    int `json:"refunds"`
		Waiting    int `json:"waiting"`
		Errors     int `json:"errors"`
		Unresolved int `json:"unresolved"`
		UpToDate   int `json:"up_to_date"`
	} `json:"summary"`
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
		if d.FormatVersion != "1.0" {
			t.Fatalf("FormatVersion=%q, want %q", d.FormatVersion, "1.0")
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
		after := rc.Change.After
		if after.Payment != "ORD-7" || after.Amount.Value != "150000.00" || after.Amount.Currency != "IDR" ||
			after.AmountMinor != 15000000 || after.Reason != "damaged in transit" ||
			after.IdempotencyKey != "TESTA1B2C3D4E5F60718293A4B5C6D7E8F90" {
			t.Errorf("After=%+v", after)
		}
		if v := d.ResourceChanges[1].Change.After.Amount.Value; v != "25000.50" {
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
		if s := d.Summary; s.Refunds != 2 || s.Waiting != 1 || s.Errors != 1 || s.Unresolved != 0 || s.UpToDate != 5 {
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
		if len(d.Resolved) != 1 || d.Resolved[0].Status != "not_received" || d.Resolved[0].IdempotencyKey != d.ResourceChanges[0].Change.After.IdempotencyKey {
			t.Errorf("Resolved=%+v", d.Resolved)
		}
		if len(d.Unresolved) != 1 || d.Summary.Unresolved != 1 {
			t.Errorf("Unresolved=%+v Summary=%+v", d.Unresolved, d.Summary)
		}
	})
	t.Run("EmptyListsNotNull", func(t *testing.T) {
		_, raw := decodeJSONDoc(t, fx[0].plan)
		for _, k := range []string{"resource_changes", "waiting", "errors", "unresolved", "resolved", "removed"} {
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

// The rendering is not a saved plan: ReadPlan still reads what WritePlan
// writes, and refuses RenderJSON's document.
func TestRenderJSONIsNotASavedPlan(t *testing.T) {
	p := renderFixtures()[1].plan
	var saved bytes.Buffer
	if err := reconcile.WritePlan(&saved, p); err != nil {
		t.Fatal(err)
	}
	back, err := reconcile.ReadPlan(&saved)
	if err != nil {
		t.Fatalf("ReadPlan(WritePlan): %v", err)
	}
	if diff := cmp.Diff(p, back); diff != "" {
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

// The documentation's example is the mixed golden, and every key of the
// goldens is documented.
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
