package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// digestVersion starts the digested text, so that a change of what is
// digested changes every digest instead of colliding with an old one.
const digestVersion = "ddctl-spec-digest-v1"

// digest computes Config.Digest: a SHA-256 over one line per field,
// name and strconv.Quote(value), in a fixed order. Quoting makes the text
// unambiguous for any string, valid UTF-8 or not.
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
	field := func(name, value string) { fmt.Fprintf(h, "%s %s\n", name, strconv.Quote(value)) }

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
		field("amount", r.Amount.Value())
		field("reason", r.Reason)
		notBefore := ""
		if !r.NotBefore.IsZero() {
			notBefore = r.NotBefore.UTC().Format(time.RFC3339Nano)
		}
		field("not_before", notBefore)
	}
	return hex.EncodeToString(h.Sum(nil))
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
