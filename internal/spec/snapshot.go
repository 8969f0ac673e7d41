package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ddctl/ddctl/internal/money"
)

// snapshotFormat is the format marker of a snapshot. A change of what a
// snapshot holds or how it is written gets a new marker, so that an old
// ddctl refuses a snapshot it would misread instead of guessing.
const snapshotFormat = "ddctl-spec-snapshot-1"

// snapshot is the JSON document of Config.Snapshot: the desired state the
// digest covers (digest.go), plus the names and keys that rebuild the
// structs, and nothing about how DOKU is reached. Times are UTC RFC 3339
// with nanoseconds ("" for the zero time) and amounts integer minor units
// (money.Amount), as digest.go digests them. Every field and list is
// always written, in Config's order, so that the same Config gives the
// same bytes.
type snapshot struct {
	Format   string            `json:"format"`
	Digest   string            `json:"digest"`
	Settings snapshotSettings  `json:"settings"`
	DOKU     snapshotDOKU      `json:"doku"`
	Refunds  []snapshotRefund  `json:"refunds"`
	Bindings []snapshotBinding `json:"bindings"`
	Unbinds  []snapshotUnbind  `json:"unbinds"`
	Charges  []snapshotCharge  `json:"recurring_charges"`
	// Written only when the configuration has them, as the digest does,
	// so that a snapshot stored before they existed stays valid.
	Moved []snapshotMoved `json:"moved,omitempty"`
}

type snapshotMoved struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Block bool   `json:"block"`
}

// snapshotLimits are the settings' limits, in minor units; 0 limits
// nothing.
type snapshotLimits struct {
	Refund          int64 `json:"refund"`
	Charge          int64 `json:"charge"`
	RefundsPerApply int64 `json:"refunds_per_apply"`
	ChargesPerApply int64 `json:"charges_per_apply"`
	RefundsPerDay   int64 `json:"refunds_per_day"`
	ChargesPerDay   int64 `json:"charges_per_day"`
}

type snapshotSettings struct {
	Timezone        string          `json:"timezone"`
	State           string          `json:"state"` // relPath: relative to Config.Dir, with forward slashes, when inside it
	ReferencePrefix string          `json:"reference_prefix"`
	Limits          *snapshotLimits `json:"limits,omitempty"`
}

// snapshotDOKU is the part of the doku block that is desired state.
type snapshotDOKU struct {
	Environment  string `json:"environment"`
	RefundPolicy string `json:"refund_policy"`
}

type snapshotRefund struct {
	Address    string `json:"address"`
	Name       string `json:"name"`
	Key        string `json:"key"`
	Payment    string `json:"payment"`
	Charge     string `json:"charge"`
	Occurrence string `json:"occurrence"`
	Amount     int64  `json:"amount"`
	Reason     string `json:"reason"`
	NotBefore  string `json:"not_before"`
	Binding    string `json:"binding,omitempty"`
}

type snapshotBinding struct {
	Address      string `json:"address"`
	Name         string `json:"name"`
	Key          string `json:"key"`
	CustomerID   string `json:"customer_id"`
	Phone        string `json:"phone"`
	SuccessURL   string `json:"success_url"`
	FailedURL    string `json:"failed_url"`
	CustomerName string `json:"customer_name"`
	Email        string `json:"email"`
	DeviceModel  string `json:"device_model"`
	OSType       string `json:"os_type"`
	ChannelID    string `json:"channel_id"`
}

type snapshotUnbind struct {
	Address    string `json:"address"`
	Name       string `json:"name"`
	Key        string `json:"key"`
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason"`
}

type snapshotCharge struct {
	Address     string        `json:"address"`
	Name        string        `json:"name"`
	Key         string        `json:"key"`
	Binding     string        `json:"binding"`
	Amount      int64         `json:"amount"`
	Schedule    string        `json:"schedule"`
	Start       string        `json:"start"`
	End         string        `json:"end"`
	Description string        `json:"description"`
	CatchUp     string        `json:"catch_up"`
	Retry       snapshotRetry `json:"retry"`
	// A Go duration; written only when not DefaultCatchUpGrace.
	CatchUpGrace string `json:"catch_up_grace,omitempty"`
}

type snapshotRetry struct {
	Attempts int    `json:"attempts"`
	Every    string `json:"every"` // a Go duration string, "0s" without a retry block
}

// Snapshot encodes the desired state of c as a JSON document that
// FromSnapshot rebuilds: what c.Digest covers (settings, the doku
// environment and refund policy, every refund, binding, unbind and
// recurring charge) plus each instance's address, name and key, marked
// with a format version. How DOKU is reached (base URL, client id and
// secret, key files, rate, IP address) and source ranges are left out, so
// the snapshot holds no secret (principle 5, docs/principles.md) and stays valid
// when credentials rotate. Customer ids and phone numbers are in it in
// clear, as in the state that keeps it; whoever prints it masks them. The
// same Config gives the same bytes, in any directory; Snapshot only reads
// c.
//
// apply stores it in the state so that the daemon reconciles what was
// applied, never unreviewed edits on disk (README.md, "The daemon").
// Snapshot returns an error when c.Digest is not the digest of c's
// content, which means c was changed after Load: FromSnapshot would refuse
// such a snapshot, so it is refused here, before anything is stored.
func (c *Config) Snapshot() ([]byte, error) {
	if got := digest(c); got != c.Digest {
		return nil, fmt.Errorf("snapshot configuration: its digest %s is not that of its content (%s); the Config was changed after Load, so load the configuration again", c.Digest, got)
	}
	s := snapshot{
		Format: snapshotFormat,
		Digest: c.Digest,
		Settings: snapshotSettings{
			Timezone:        c.Settings.Timezone,
			State:           relPath(c.Dir, c.Settings.State),
			ReferencePrefix: c.Settings.ReferencePrefix,
		},
		DOKU: snapshotDOKU{
			Environment:  c.DOKU.Environment,
			RefundPolicy: c.DOKU.RefundPolicy,
		},
		// Empty lists, not null, whatever the Config holds.
		Refunds:  make([]snapshotRefund, 0, len(c.Refunds)),
		Bindings: make([]snapshotBinding, 0, len(c.Bindings)),
		Unbinds:  make([]snapshotUnbind, 0, len(c.Unbinds)),
		Charges:  make([]snapshotCharge, 0, len(c.Charges)),
	}
	if lim := c.Settings.Limits; !lim.IsZero() {
		s.Settings.Limits = &snapshotLimits{Refund: int64(lim.Refund), Charge: int64(lim.Charge),
			RefundsPerApply: int64(lim.RefundsPerApply), ChargesPerApply: int64(lim.ChargesPerApply),
			RefundsPerDay: int64(lim.RefundsPerDay), ChargesPerDay: int64(lim.ChargesPerDay)}
	}
	for _, m := range c.Moved {
		s.Moved = append(s.Moved, snapshotMoved{From: m.From, To: m.To, Block: m.Block})
	}
	for _, r := range c.Refunds {
		s.Refunds = append(s.Refunds, snapshotRefund{
			Address:    r.Address,
			Name:       r.Name,
			Key:        r.Key,
			Payment:    r.Payment,
			Charge:     r.Charge,
			Occurrence: instant(r.Occurrence),
			Amount:     int64(r.Amount),
			Reason:     r.Reason,
			NotBefore:  instant(r.NotBefore),
			Binding:    r.Binding,
		})
	}
	for _, b := range c.Bindings {
		s.Bindings = append(s.Bindings, snapshotBinding{
			Address:      b.Address,
			Name:         b.Name,
			Key:          b.Key,
			CustomerID:   b.CustomerID,
			Phone:        b.Phone,
			SuccessURL:   b.SuccessURL,
			FailedURL:    b.FailedURL,
			CustomerName: b.CustomerName,
			Email:        b.Email,
			DeviceModel:  b.DeviceModel,
			OSType:       b.OSType,
			ChannelID:    b.ChannelID,
		})
	}
	for _, u := range c.Unbinds {
		s.Unbinds = append(s.Unbinds, snapshotUnbind{
			Address:    u.Address,
			Name:       u.Name,
			Key:        u.Key,
			CustomerID: u.CustomerID,
			Reason:     u.Reason,
		})
	}
	for _, ch := range c.Charges {
		s.Charges = append(s.Charges, snapshotCharge{
			Address:     ch.Address,
			Name:        ch.Name,
			Key:         ch.Key,
			Binding:     ch.Binding,
			Amount:      int64(ch.Amount),
			Schedule:    ch.Schedule,
			Start:       instant(ch.Start),
			End:         instant(ch.End),
			Description: ch.Description,
			CatchUp:     string(ch.CatchUp),
			Retry:       snapshotRetry{Attempts: ch.Retry.Attempts, Every: ch.Retry.Every.String()},
		})
		if g := ch.CatchUpGrace; g != 0 && g != DefaultCatchUpGrace {
			s.Charges[len(s.Charges)-1].CatchUpGrace = g.String()
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // URLs keep their & for whoever reads the state
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("snapshot configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// FromSnapshot decodes a snapshot made by Snapshot into a Config whose Dir
// is dir (made absolute) and whose DOKU is d, the doku block of the
// configuration at hand, except RefundPolicy, which is desired state and
// comes from the snapshot. A relative state path is joined with dir.
// Refund occurrences, charge starts and ends and not_before instants are
// in Settings.Location (Load keeps the offset a timestamp was written
// with; the instant is the same, and so is the digest). Declaration
// ranges are zero: the snapshot has no source. Digest is the stored
// digest, which is also the digest of the returned Config.
//
// It returns an error, saying what to do, when b is not a snapshot or has
// another format version; when d is for another DOKU environment than the
// snapshot (a plan made for the sandbox must never run against
// production); when it has a field this version does not know, an
// instance whose name and key do not make its address, or a time zone,
// time, duration or schedule that does not parse on this machine; and when the digest of the rebuilt Config is
// not the one stored, which means the snapshot is corrupt or was edited
// by hand (principle 4, docs/principles.md).
func FromSnapshot(b []byte, d DOKU, dir string) (*Config, error) {
	var probe struct {
		Format *string `json:"format"`
	}
	if err := json.Unmarshal(b, &probe); err != nil || probe.Format == nil {
		reason := "it has no format marker"
		if err != nil {
			reason = err.Error()
		}
		return nil, fmt.Errorf("the stored configuration is not a ddctl configuration snapshot (%s); run ddctl apply to store the configuration again", reason)
	}
	if *probe.Format != snapshotFormat {
		return nil, fmt.Errorf("the stored configuration snapshot has format %q, but this ddctl reads only %q; run the ddctl version that applied it, or run ddctl apply again with this one", *probe.Format, snapshotFormat)
	}
	var s snapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a field this version does not know would be dropped silently
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("the stored configuration snapshot does not decode (%s); it is corrupt or was edited by hand: run ddctl apply to store the configuration again", err)
	}

	if s.DOKU.Environment != d.Environment {
		return nil, fmt.Errorf("the applied configuration is for environment %q but this doku block is for %q; a plan made for one DOKU environment never runs against another: point the doku block at %q, or run ddctl apply for %q first",
			s.DOKU.Environment, d.Environment, s.DOKU.Environment, d.Environment)
	}

	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("the configuration directory %q cannot be resolved: %w", dir, err)
	}
	loc, err := loadLocation(s.Settings.Timezone)
	if err != nil {
		return nil, fmt.Errorf("the applied configuration's time zone %q is not one this ddctl knows (%s): the snapshot is corrupt, or a ddctl with a newer time zone database applied it; run ddctl apply again with this one", s.Settings.Timezone, err)
	}
	state := s.Settings.State
	if !filepath.IsAbs(state) {
		state = filepath.Join(abs, filepath.FromSlash(state))
	}
	d.RefundPolicy = s.DOKU.RefundPolicy
	var limits Limits
	if l := s.Settings.Limits; l != nil {
		limits = Limits{Refund: money.Amount(l.Refund), Charge: money.Amount(l.Charge),
			RefundsPerApply: money.Amount(l.RefundsPerApply), ChargesPerApply: money.Amount(l.ChargesPerApply),
			RefundsPerDay: money.Amount(l.RefundsPerDay), ChargesPerDay: money.Amount(l.ChargesPerDay)}
	}
	cfg := &Config{
		Dir: abs,
		Settings: Settings{
			Timezone:        s.Settings.Timezone,
			Location:        loc,
			State:           state,
			ReferencePrefix: s.Settings.ReferencePrefix,
			Limits:          limits,
		},
		DOKU: d,
	}
	for _, m := range s.Moved {
		cfg.Moved = append(cfg.Moved, Moved{From: m.From, To: m.To, Block: m.Block})
	}

	for _, r := range s.Refunds {
		if err := checkNames("refund", r.Address, r.Name, r.Key); err != nil {
			return nil, err
		}
		occurrence, err := snapshotTime(r.Address, "occurrence", r.Occurrence, loc)
		if err != nil {
			return nil, err
		}
		notBefore, err := snapshotTime(r.Address, "not_before", r.NotBefore, loc)
		if err != nil {
			return nil, err
		}
		cfg.Refunds = append(cfg.Refunds, Refund{
			Address:    r.Address,
			Name:       r.Name,
			Key:        r.Key,
			Payment:    r.Payment,
			Charge:     r.Charge,
			Occurrence: occurrence,
			Amount:     money.Amount(r.Amount),
			Reason:     r.Reason,
			NotBefore:  notBefore,
			Binding:    r.Binding,
		})
	}
	for _, b := range s.Bindings {
		if err := checkNames("binding", b.Address, b.Name, b.Key); err != nil {
			return nil, err
		}
		cfg.Bindings = append(cfg.Bindings, Binding{
			Address:      b.Address,
			Name:         b.Name,
			Key:          b.Key,
			CustomerID:   b.CustomerID,
			Phone:        b.Phone,
			SuccessURL:   b.SuccessURL,
			FailedURL:    b.FailedURL,
			CustomerName: b.CustomerName,
			Email:        b.Email,
			DeviceModel:  b.DeviceModel,
			OSType:       b.OSType,
			ChannelID:    b.ChannelID,
		})
	}
	for _, u := range s.Unbinds {
		if err := checkNames("unbind", u.Address, u.Name, u.Key); err != nil {
			return nil, err
		}
		cfg.Unbinds = append(cfg.Unbinds, Unbind{
			Address:    u.Address,
			Name:       u.Name,
			Key:        u.Key,
			CustomerID: u.CustomerID,
			Reason:     u.Reason,
		})
	}
	for _, c := range s.Charges {
		if err := checkNames("recurring_charge", c.Address, c.Name, c.Key); err != nil {
			return nil, err
		}
		if _, err := parseSchedule(c.Schedule); err != nil {
			return nil, fmt.Errorf("the stored configuration snapshot is corrupt: the schedule %q of %s does not parse (%s); run ddctl apply to store the configuration again", c.Schedule, c.Address, err)
		}
		start, err := snapshotTime(c.Address, "start", c.Start, loc)
		if err != nil {
			return nil, err
		}
		end, err := snapshotTime(c.Address, "end", c.End, loc)
		if err != nil {
			return nil, err
		}
		every, err := time.ParseDuration(c.Retry.Every)
		if err != nil {
			return nil, fmt.Errorf("the stored configuration snapshot is corrupt: retry.every of %s is %q, not a duration such as \"24h0m0s\"; run ddctl apply to store the configuration again", c.Address, c.Retry.Every)
		}
		grace := DefaultCatchUpGrace
		if c.CatchUpGrace != "" {
			if grace, err = time.ParseDuration(c.CatchUpGrace); err != nil || grace <= 0 {
				return nil, fmt.Errorf("the stored configuration snapshot is corrupt: catch_up_grace of %s is %q, not a duration such as \"2h0m0s\"; run ddctl apply to store the configuration again", c.Address, c.CatchUpGrace)
			}
		}
		cfg.Charges = append(cfg.Charges, Charge{
			Address:     c.Address,
			Name:        c.Name,
			Key:         c.Key,
			Binding:     c.Binding,
			Amount:      money.Amount(c.Amount),
			Schedule:    c.Schedule,
			Start:       start,
			End:         end,
			Description: c.Description,
			CatchUp:     CatchUp(c.CatchUp),
			Retry:       Retry{Attempts: c.Retry.Attempts, Every: every},

			CatchUpGrace: grace,
		})
	}

	if got := digest(cfg); got != s.Digest {
		return nil, fmt.Errorf("the stored configuration snapshot is corrupt or was edited by hand: its content has digest %s, but it says %s; run ddctl apply to store the configuration again", got, s.Digest)
	}
	cfg.Digest = s.Digest
	return cfg, nil
}

// snapshotTime decodes the time v of field of the instance at addr: "" is
// the zero time, anything else an RFC 3339 instant, returned in loc.
func snapshotTime(addr, field, v string, loc *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("the stored configuration snapshot is corrupt: %s of %s is %q, not an RFC 3339 time; run ddctl apply to store the configuration again", field, addr, v)
	}
	return t.In(loc), nil
}

// checkNames reports an error when an instance's name and key do not make
// its address. The digest covers the address only, so this is what keeps
// a name edited in the snapshot from going unnoticed.
func checkNames(kind, addr, name, key string) error {
	if instanceAddress(kind, name, key) != addr {
		return fmt.Errorf("the stored configuration snapshot is corrupt: %s has name %q and key %q, which make another address; run ddctl apply to store the configuration again", addr, name, key)
	}
	return nil
}
