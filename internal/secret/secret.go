// Package secret holds Value, a string that never prints itself.
//
// Client secrets, private keys and customer tokens travel as Values so that
// a stray fmt verb, log line or JSON encoding shows "(sensitive value)"
// instead of the secret (principle 5, docs/principles.md). Reveal is for signing and
// encryption only.
package secret

import "log/slog"

// Redacted is what a Value prints instead of itself.
const Redacted = "(sensitive value)"

// Value is a secret string. The zero value is the empty secret.
type Value struct{ s string }

// New wraps s.
func New(s string) Value { return Value{s: s} }

// Reveal returns the secret itself, for signing and encryption only.
func (v Value) Reveal() string { return v.s }

// IsZero reports whether the secret is empty.
func (v Value) IsZero() bool { return v.s == "" }

// String returns a redaction marker, never the secret.
func (v Value) String() string { return Redacted }

// GoString returns a redaction marker, never the secret (%#v).
func (v Value) GoString() string { return Redacted }

// LogValue keeps the secret out of slog output.
func (v Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON keeps the secret out of JSON output.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }
