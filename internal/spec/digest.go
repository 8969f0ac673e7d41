package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strconv"
	"time"
)

// digestVersion starts the digested text, so that a change of what is
// digested changes every digest instead of colliding with an old one.
const digestVersion = "ddctl-spec-digest-v2"

// digest computes Config.Digest: a SHA-256 over one line per field,
// name and strconv.Quote(value), in a fixed order. Quoting makes the text
// unambiguous for any string, valid UTF-8 or not.
//
// Each kind of block is a list of its instances in Address order, each
// instance starting with a line that names its kind and address, so that
// moving a field from one instance to another changes the text.
//
// The schedule is digested as written, in the settings' time zone (which
// is digested too): "0 9 1 * *" and "0  9 1 * *" differ, harmlessly.
//
// Paths are digested relative to the configuration directory where they
// are inside it, so that the same checkout in another place (a CI runner's
// workspace) has the same digest. Times are digested as UTC instants, so
// that "2026-12-05T02:00:00+07:00" and "2026-12-04T19:00:00Z" are the same
// desired state.
//
// How DOKU is reached (base_url, credentials, key files, rate, IP address)
// is left out: it says nothing about which calls to make, and it changes
// under a reviewed plan without changing the plan's meaning (a rotated
// secret, a sandbox on a new port). The environment is kept: a plan made
// for the sandbox must not run against production.
func digest(cfg *Config) string {
	h := sha256.New()
	// The lines are built in one buffer and hashed in large writes: a
	// Fprintf per field costs a tenth of loading 10,000 refunds.
	var buf []byte
	field := func(name, value string) {
		buf = append(buf, name...)
		buf = append(buf, ' ')
		buf = strconv.AppendQuote(buf, value)
		buf = append(buf, '\n')
		if len(buf) >= 32<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}

	field("version", digestVersion)

	s := cfg.Settings
	field("settings.timezone", s.Timezone)
	field("settings.state", relPath(cfg.Dir, s.State))
	field("settings.reference_prefix", s.ReferencePrefix)

	d := cfg.DOKU
	field("doku.environment", d.Environment)
	field("doku.refund_policy", d.RefundPolicy)

	for _, r := range cfg.Refunds {
		field("refund", r.Address)
		field("payment", r.Payment)
		field("charge", r.Charge)
		field("occurrence", instant(r.Occurrence))
		field("amount", r.Amount.Value())
		field("reason", r.Reason)
		field("not_before", instant(r.NotBefore))
		if r.Binding != "" {
			// Only when set, so that the digests of configurations
			// written before refunds named their payer stay the same.
			field("refund.binding", r.Binding)
		}
	}

	for _, b := range cfg.Bindings {
		field("binding", b.Address)
		field("customer_id", b.CustomerID)
		field("phone", b.Phone)
		field("success_url", b.SuccessURL)
		field("failed_url", b.FailedURL)
		field("customer_name", b.CustomerName)
		field("email", b.Email)
		field("device_model", b.DeviceModel)
		field("os_type", b.OSType)
		field("channel_id", b.ChannelID)
	}

	for _, u := range cfg.Unbinds {
		field("unbind", u.Address)
		field("customer_id", u.CustomerID)
		field("reason", u.Reason)
	}

	for _, c := range cfg.Charges {
		field("recurring_charge", c.Address)
		field("binding", c.Binding)
		field("amount", c.Amount.Value())
		field("schedule", c.Schedule)
		field("start", instant(c.Start))
		field("end", instant(c.End))
		field("description", c.Description)
		field("catch_up", string(c.CatchUp))
		field("retry.attempts", strconv.Itoa(c.Retry.Attempts))
		field("retry.every", c.Retry.Every.String())
		if g := c.CatchUpGrace; g != 0 && g != DefaultCatchUpGrace {
			field("catch_up_grace", c.CatchUpGrace.String())
		}
	}

	// What came after version 2 of the digest is digested only where it
	// is set, so that a configuration without it keeps its digest, and
	// snapshots stored before it stay valid.
	for _, name := range limitNames {
		if a := *s.Limits.field(name); a != 0 {
			field("settings.limits."+name, a.Value())
		}
	}
	for _, m := range cfg.Moved {
		field("moved.from", m.From)
		field("moved.to", m.To)
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}

// instant is t as a UTC RFC 3339 instant, or "" for the zero time.
func instant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// relPath returns p relative to dir, with forward slashes, when p is inside
// dir; otherwise p.
func relPath(dir, p string) string {
	if p == "" || !within(dir, p) {
		return p
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(rel)
}
