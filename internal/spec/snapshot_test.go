package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ddctl/ddctl/internal/secret"
)

// snapshotHCL has every kind of desired state a snapshot carries: a
// non-default time zone (with daylight saving) and reference prefix,
// refund_policy partial, for_each bindings and refunds, a recurring charge
// with end, catch_up and retry, a for_each charge, a refund of a charge
// occurrence, a refund with a not_before that has nanoseconds, and an
// unbind. How DOKU is reached uses values the snapshot must not hold.
const snapshotHCL = `
settings {
  timezone         = "America/New_York"
  state            = "state/ddctl.db"
  reference_prefix = "SHOPSNAP"
}

variable "client_secret" {
  sensitive = true
}

doku {
  environment          = "sandbox"
  base_url             = "http://127.0.0.1:8799"
  client_id            = "C-snapshot-client"
  client_secret        = var.client_secret
  private_key_file     = "keys/merchant-snap.pem"
  doku_public_key_file = "keys/doku-snap.pub.pem"
  requests_per_second  = 7
  refund_policy        = "partial"
  ip_address           = "192.168.77.88"
}

locals {
  team = { alice = "6281234567890", carol = "6281234567899" }
}

binding "dave" {
  customer_id = "cust-004"
  phone       = "628111222333"
  success_url = "https://shop.example/bind/ok?from=ddctl&step=2"
  failed_url  = "https://shop.example/bind/failed"
}

binding "team" {
  for_each      = local.team
  customer_id   = "team-${each.key}"
  phone         = each.value
  success_url   = "https://shop.example/bind/ok"
  failed_url    = "https://shop.example/bind/failed"
  customer_name = title(each.key)
  email         = "${each.key}@example.com"
  device_model  = "Pixel 8"
  os_type       = "ios"
  channel_id    = "app"
}

unbind "bob" {
  customer_id = "cust-002"
  reason      = "account closed, ticket 8812"
}

recurring_charge "gym" {
  binding     = binding.dave
  amount      = "150000.50"
  schedule    = "30 1 * * *"
  start       = "2026-01-15"
  end         = "2027-06-30T23:59:59.5-04:00"
  description = "Gym membership"
  catch_up    = "all"
  retry {
    attempts = 3
    every    = "36h"
  }
}

recurring_charge "team" {
  for_each = local.team
  binding  = binding.team[each.key]
  amount   = 99000
  schedule = "0 9 1 * *"
  start    = "2026-03-01T09:00:00Z"
}

refund "gym_feb" {
  payment = "recurring_charge.gym#2026-02-10T01:30-05:00"
  amount  = 50000
  reason  = "pro rata"
}

refund "batch" {
  for_each   = { "ORD-1" = "INV-1", "ORD-2" = "INV-2" }
  payment    = each.value
  amount     = 25000
  reason     = "batch ${each.key}"
  not_before = "2026-12-05T02:00:00.123456789+07:00"
}

refund "full" {
  payment = "INV-9"
}
`

// Values of snapshotHCL that say how DOKU is reached, which no snapshot
// may contain.
const (
	snapshotCanary  = "sk-canary-snapshot-91f2"
	snapshotBaseURL = "127.0.0.1:8799"
)

// loadSnapshotConfig writes snapshotHCL into a new temporary directory and
// loads it, with the client secret given as a -var.
func loadSnapshotConfig(tb testing.TB) *Config {
	tb.Helper()
	dir := tb.TempDir()
	writeFiles(tb, dir, map[string]string{"main.hcl": snapshotHCL})
	return mustLoad(tb, LoadOptions{Dir: dir, Vars: []string{"client_secret=" + snapshotCanary}})
}

// mustSnapshot returns cfg.Snapshot() and fails the test on an error.
func mustSnapshot(tb testing.TB, cfg *Config) []byte {
	tb.Helper()
	b, err := cfg.Snapshot()
	if err != nil {
		tb.Fatalf("Snapshot: %v", err)
	}
	return b
}

// snapshotCmp compares Configs: times by instant (time.Time.Equal, which
// go-cmp uses), locations by name, secrets by value, and no declaration
// ranges, which a snapshot does not have.
var snapshotCmp = cmp.Options{
	cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
	cmp.Comparer(func(a, b secret.Value) bool { return a.Reveal() == b.Reveal() }),
	cmpopts.IgnoreFields(Refund{}, "DeclRange"),
	cmpopts.IgnoreFields(Binding{}, "DeclRange"),
	cmpopts.IgnoreFields(Unbind{}, "DeclRange"),
	cmpopts.IgnoreFields(Charge{}, "DeclRange"),
}

func TestSnapshotRoundTrip(t *testing.T) {
	cfg := loadSnapshotConfig(t)

	// The configuration must exercise what the snapshot has to carry, or
	// an equal round trip would prove little.
	if len(cfg.Refunds) != 4 || len(cfg.Bindings) != 3 || len(cfg.Unbinds) != 1 || len(cfg.Charges) != 3 {
		t.Fatalf("loaded %d refunds, %d bindings, %d unbinds, %d charges; want 4, 3, 1, 3",
			len(cfg.Refunds), len(cfg.Bindings), len(cfg.Unbinds), len(cfg.Charges))
	}
	gymFeb, batch, gym := cfg.Refunds[3], cfg.Refunds[0], cfg.Charges[0]
	if gymFeb.Address != "refund.gym_feb" || gymFeb.Charge != "recurring_charge.gym" || gymFeb.Occurrence.IsZero() {
		t.Fatalf("Refunds[3]=%+v, want the refund of a gym occurrence", gymFeb)
	}
	if batch.NotBefore.Nanosecond() != 123456789 {
		t.Fatalf("Refunds[0].NotBefore=%v, want nanoseconds 123456789", batch.NotBefore)
	}
	if gym.End.IsZero() || gym.End.Nanosecond() == 0 || gym.CatchUp != CatchUpAll || gym.Retry != (Retry{Attempts: 3, Every: 36 * time.Hour}) {
		t.Fatalf("Charges[0]=%+v, want end with a fraction of a second, catch_up all and a retry block", gym)
	}

	b := mustSnapshot(t, cfg)
	if !bytes.Contains(b, []byte(`"success_url": "https://shop.example/bind/ok?from=ddctl&step=2"`)) {
		t.Errorf("snapshot does not hold binding.dave's success_url as written:\n%s", b)
	}
	d := cfg.DOKU
	d.RefundPolicy = refundPolicyFull // the snapshot's refund policy must win over the doku block's

	t.Run("OK", func(t *testing.T) {
		got, err := FromSnapshot(b, d, cfg.Dir)
		if err != nil {
			t.Fatalf("FromSnapshot: %v", err)
		}
		if diff := cmp.Diff(cfg, got, snapshotCmp); diff != "" {
			t.Errorf("Config mismatch (-loaded +restored):\n%s", diff)
		}
		if got.DOKU.RefundPolicy != refundPolicyPartial {
			t.Errorf("RefundPolicy=%q, want %q from the snapshot", got.DOKU.RefundPolicy, refundPolicyPartial)
		}
		if got.DOKU.ClientSecret.Reveal() != snapshotCanary || got.DOKU.BaseURL != "http://"+snapshotBaseURL {
			t.Errorf("DOKU=%+v, want the given doku block's connection", got.DOKU)
		}
		// Occurrences are in the settings' location, as Load returns them.
		if loc := got.Refunds[3].Occurrence.Location().String(); loc != "America/New_York" {
			t.Errorf("Occurrence location=%s, want America/New_York", loc)
		}
		if got.Settings.Location.String() != "America/New_York" {
			t.Errorf("Location=%v, want America/New_York", got.Settings.Location)
		}
	})

	t.Run("AnotherDirectory", func(t *testing.T) {
		dir := t.TempDir()
		got, err := FromSnapshot(b, d, dir)
		if err != nil {
			t.Fatalf("FromSnapshot: %v", err)
		}
		if got.Dir != dir {
			t.Errorf("Dir=%q, want %q", got.Dir, dir)
		}
		if want := filepath.Join(dir, "state", "ddctl.db"); got.Settings.State != want {
			t.Errorf("State=%q, want %q (the relative state path joined with dir)", got.Settings.State, want)
		}
		if got.Digest != cfg.Digest {
			t.Errorf("Digest=%s, want %s", got.Digest, cfg.Digest)
		}
	})

	t.Run("RelativeDirectory", func(t *testing.T) {
		got, err := FromSnapshot(b, d, ".")
		if err != nil {
			t.Fatalf("FromSnapshot: %v", err)
		}
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		if got.Dir != wd {
			t.Errorf("Dir=%q, want the absolute %q", got.Dir, wd)
		}
	})
}

func TestSnapshotAbsoluteState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "elsewhere", "ddctl.db") // outside the configuration directory
	src := "settings {\n  state = " + `"` + filepath.ToSlash(state) + `"` + "\n}\n"
	cfg, files, diags := loadMain(t, src, nil, nil)
	if cfg == nil {
		t.Fatalf("unexpected errors:\n%s", renderDiags(t, files, diags))
	}
	b := mustSnapshot(t, cfg)
	got, err := FromSnapshot(b, cfg.DOKU, t.TempDir())
	if err != nil {
		t.Fatalf("FromSnapshot: %v", err)
	}
	if got.Settings.State != state {
		t.Errorf("State=%q, want %q unchanged", got.Settings.State, state)
	}
	// Nothing declared: empty lists, restored as nil like Load's.
	if got.Refunds != nil || got.Bindings != nil || got.Unbinds != nil || got.Charges != nil {
		t.Errorf("restored %+v, want nil lists", got)
	}
	if !bytes.Contains(b, []byte(`"refunds": []`)) {
		t.Errorf("snapshot has no empty refunds list:\n%s", b)
	}
}

func TestSnapshotOccurrences(t *testing.T) {
	cfg := loadSnapshotConfig(t)
	got, err := FromSnapshot(mustSnapshot(t, cfg), cfg.DOKU, cfg.Dir)
	if err != nil {
		t.Fatalf("FromSnapshot: %v", err)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	// addresses names each occurrence the way state and plans do: the
	// time in the location, with its offset.
	addresses := func(c Charge, loc *time.Location) []string {
		var out []string
		for _, at := range c.Occurrences(from, to, loc) {
			out = append(out, OccurrenceAddress(c.Address, at, loc))
		}
		return out
	}
	for i, c := range cfg.Charges {
		want := addresses(c, cfg.Settings.Location)
		if len(want) == 0 {
			t.Fatalf("%s has no occurrence in %v-%v", c.Address, from, to)
		}
		if diff := cmp.Diff(want, addresses(got.Charges[i], got.Settings.Location)); diff != "" {
			t.Errorf("%s occurrences mismatch (-loaded +restored):\n%s", c.Address, diff)
		}
	}
	// The gym charges at 01:30 New York time every day: once, at the first
	// 01:30, on the night clocks go back, so the year exercises the
	// offsets too.
	gym := addresses(got.Charges[0], got.Settings.Location)
	if !slices.Contains(gym, "recurring_charge.gym#2026-11-01T01:30-04:00") || slices.Contains(gym, "recurring_charge.gym#2026-11-01T01:30-05:00") {
		t.Errorf("restored gym occurrences on 2026-11-01 are not the first 01:30 alone")
	}
}

func TestSnapshotDeterministic(t *testing.T) {
	cfg := loadSnapshotConfig(t)
	first := mustSnapshot(t, cfg)

	t.Run("Again", func(t *testing.T) {
		if again := mustSnapshot(t, cfg); !bytes.Equal(first, again) {
			t.Errorf("second snapshot differs:\n%s\nfirst:\n%s", again, first)
		}
	})
	t.Run("AnotherDirectory", func(t *testing.T) {
		other := loadSnapshotConfig(t) // the same files in another temporary directory
		if other.Dir == cfg.Dir {
			t.Fatalf("both configurations are in %s", cfg.Dir)
		}
		if b := mustSnapshot(t, other); !bytes.Equal(first, b) {
			t.Errorf("snapshot in another directory differs:\n%s\nfirst:\n%s", b, first)
		}
	})
	t.Run("Restored", func(t *testing.T) {
		got, err := FromSnapshot(first, cfg.DOKU, t.TempDir())
		if err != nil {
			t.Fatalf("FromSnapshot: %v", err)
		}
		if b := mustSnapshot(t, got); !bytes.Equal(first, b) {
			t.Errorf("snapshot of the restored configuration differs:\n%s\nfirst:\n%s", b, first)
		}
	})
}

func TestSnapshotLeavesOutHowDOKUIsReached(t *testing.T) {
	cfg := loadSnapshotConfig(t)
	if cfg.DOKU.ClientSecret.Reveal() != snapshotCanary {
		t.Fatalf("ClientSecret is not the canary; the test would prove nothing")
	}
	b := mustSnapshot(t, cfg)
	for _, leak := range []string{
		snapshotCanary,
		secret.Redacted, // the secret is left out, not redacted
		snapshotBaseURL,
		"C-snapshot-client",
		"merchant-snap.pem",
		"doku-snap.pub.pem",
		"192.168.77.88",
		cfg.DOKU.PrivateKeyFile,
	} {
		if bytes.Contains(b, []byte(leak)) {
			t.Errorf("snapshot contains %q:\n%s", leak, b)
		}
	}

	var doc struct {
		DOKU     map[string]json.RawMessage `json:"doku"`
		Settings map[string]json.RawMessage `json:"settings"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]json.RawMessage) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if got, want := keys(doc.DOKU), []string{"environment", "refund_policy"}; !slices.Equal(got, want) {
		t.Errorf("doku keys=%q, want %q", got, want)
	}
	if got, want := keys(doc.Settings), []string{"reference_prefix", "state", "timezone"}; !slices.Equal(got, want) {
		t.Errorf("settings keys=%q, want %q", got, want)
	}
	if got := string(doc.Settings["state"]); got != `"state/ddctl.db"` {
		t.Errorf("settings.state=%s, want the path relative to the configuration directory", got)
	}
}

func TestSnapshotChangedAfterLoad(t *testing.T) {
	cfg := loadSnapshotConfig(t)
	cfg.Refunds[0].Amount++
	if b, err := cfg.Snapshot(); err == nil {
		t.Fatalf("Snapshot of a Config changed after Load succeeded:\n%s", b)
	} else if !strings.Contains(err.Error(), "changed after Load") {
		t.Errorf("err=%v, want it to say the Config changed after Load", err)
	}
}

func TestFromSnapshotErrors(t *testing.T) {
	cfg := loadSnapshotConfig(t)
	good := mustSnapshot(t, cfg)
	if _, err := FromSnapshot(good, cfg.DOKU, cfg.Dir); err != nil {
		t.Fatalf("FromSnapshot of the untouched snapshot: %v", err)
	}

	// edit replaces old, which must occur in good, with new.
	edit := func(tb testing.TB, old, new string) []byte {
		tb.Helper()
		if !bytes.Contains(good, []byte(old)) {
			tb.Fatalf("snapshot has no %q:\n%s", old, good)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	production := cfg.DOKU
	production.Environment = environmentProduction

	tests := []struct {
		name string
		b    func(tb testing.TB) []byte
		d    DOKU
		want string // in the error message
	}{
		{"EnvironmentMismatch", func(testing.TB) []byte { return good }, production,
			`the applied configuration is for environment "sandbox" but this doku block is for "production"`},
		{"TamperedAmount", func(tb testing.TB) []byte { return edit(tb, `"amount": 5000000,`, `"amount": 5000001,`) }, cfg.DOKU,
			"corrupt or was edited by hand: its content has digest"},
		{"TamperedDigest", func(tb testing.TB) []byte { return edit(tb, cfg.Digest, strings.Repeat("0", 64)) }, cfg.DOKU,
			"corrupt or was edited by hand: its content has digest"},
		{"UnknownFormat", func(tb testing.TB) []byte {
			return edit(tb, `"format": "ddctl-spec-snapshot-1"`, `"format": "ddctl-spec-snapshot-2"`)
		}, cfg.DOKU, `has format "ddctl-spec-snapshot-2", but this ddctl reads only "ddctl-spec-snapshot-1"`},
		{"NoFormat", func(tb testing.TB) []byte { return edit(tb, `"format": "ddctl-spec-snapshot-1",`, ``) }, cfg.DOKU,
			"not a ddctl configuration snapshot"},
		{"UnknownField", func(tb testing.TB) []byte {
			return edit(tb, `"environment": "sandbox",`, `"environment": "sandbox", "base_url": "http://x",`)
		}, cfg.DOKU, "does not decode"},
		{"TrailingData", func(testing.TB) []byte { return append(slices.Clip(good), "{}"...) }, cfg.DOKU,
			"not a ddctl configuration snapshot"},
		{"BadTimezone", func(tb testing.TB) []byte {
			return edit(tb, `"timezone": "America/New_York"`, `"timezone": "Mars/Olympus_Mons"`)
		}, cfg.DOKU, `time zone "Mars/Olympus_Mons" is not one this ddctl knows`},
		{"BadSchedule", func(tb testing.TB) []byte { return edit(tb, `"schedule": "30 1 * * *"`, `"schedule": "@every 1h"`) }, cfg.DOKU,
			`the schedule "@every 1h" of recurring_charge.gym does not parse`},
		{"BadTime", func(tb testing.TB) []byte {
			return edit(tb, `"not_before": "2026-12-04T19:00:00.123456789Z"`, `"not_before": "2026-12-04"`)
		}, cfg.DOKU, `not_before of refund.batch["ORD-1"] is "2026-12-04", not an RFC 3339 time`},
		{"BadRetryEvery", func(tb testing.TB) []byte { return edit(tb, `"every": "36h0m0s"`, `"every": "a day and a half"`) }, cfg.DOKU,
			`retry.every of recurring_charge.gym is "a day and a half"`},
		{"RenamedInstance", func(tb testing.TB) []byte { return edit(tb, `"name": "dave"`, `"name": "eve"`) }, cfg.DOKU,
			`binding.dave has name "eve" and key "", which make another address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromSnapshot(tt.b(t), tt.d, cfg.Dir)
			if err == nil {
				t.Fatalf("FromSnapshot succeeded: %+v", got)
			}
			if got != nil {
				t.Errorf("FromSnapshot returned a Config with the error %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err=%v\nwant it to contain %q", err, tt.want)
			}
		})
	}

	t.Run("Garbage", func(t *testing.T) {
		for _, b := range []string{"", "not json", "[]", "null", "{}", `"ddctl-spec-snapshot-1"`, `{"format": 1}`, "\x00\xff"} {
			got, err := FromSnapshot([]byte(b), cfg.DOKU, cfg.Dir)
			if err == nil || got != nil {
				t.Errorf("FromSnapshot(%q)=%v, %v; want an error", b, got, err)
				continue
			}
			if !strings.Contains(err.Error(), "not a ddctl configuration snapshot") {
				t.Errorf("FromSnapshot(%q): err=%v, want it to say it is not a snapshot", b, err)
			}
		}
	})
}
