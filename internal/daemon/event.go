package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// Outgoing events: every status change the state records (a charge
// awaiting its customer, with the link; a charge or refund that succeeded
// or failed; a binding active or removed) is written to an outbox in the
// transaction that makes the change, and the daemon posts each to
// EventURL until it answers 2xx.
//
// Each post carries the headers
//
//	X-DDCTL-Event-ID: <id, the same on every retry>
//	X-DDCTL-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// so that the receiver can check the body and refuse a replay outside its
// time window (the scheme Stripe uses; VerifyEvent checks it).

const (
	// EventSignatureHeader carries an event's signature.
	EventSignatureHeader = "X-DDCTL-Signature"
	// EventIDHeader carries an event's ID, for the receiver's dedupe.
	EventIDHeader = "X-DDCTL-Event-ID"
	// eventMaxAge: events older than this when the daemon starts are not
	// sent (a webhook configured today does not get last year's events).
	eventMaxAge = 24 * time.Hour
	// eventRetryMax caps the wait between two tries of one event.
	eventRetryMax = time.Hour
	// eventPoll is how often the outbox is looked at besides after cycles.
	eventPoll = 5 * time.Second
)

// Event is the JSON body of an outgoing event.
type Event struct {
	ID        int64           `json:"id"`
	Type      state.EventType `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	// Address is the instance, or for a charge its occurrence
	// (recurring_charge.gym#2026-12-01T09:00+07:00).
	Address        string    `json:"address"`
	Charge         string    `json:"charge,omitempty"`
	Occurrence     time.Time `json:"occurrence,omitzero"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Amount         string    `json:"amount,omitempty"` // "150000.00"
	Currency       string    `json:"currency,omitempty"`
	ReferenceNo    string    `json:"reference_no,omitempty"`
	SNAPCode       string    `json:"snap_code,omitempty"`
	Message        string    `json:"message,omitempty"`
	// Link is where the customer confirms a charge (OTP and PIN).
	Link string `json:"link,omitempty"`
}

func eventOf(e state.Event, loc *time.Location) Event {
	out := Event{ID: e.ID, Type: e.Type, CreatedAt: e.CreatedAt.UTC(), Address: e.Address, IdempotencyKey: e.Key,
		ReferenceNo: e.ReferenceNo, SNAPCode: e.SNAPCode, Message: e.Message, Link: e.Link}
	if !e.Occurrence.IsZero() {
		out.Charge, out.Occurrence = e.Address, e.Occurrence.In(loc)
		out.Address = spec.OccurrenceAddress(e.Address, e.Occurrence, loc)
	}
	if e.Amount != 0 {
		out.Amount, out.Currency = doku.NewAmount(e.Amount).Value, "IDR"
	}
	return out
}

// SignEvent returns the X-DDCTL-Signature of body sent at t.
func SignEvent(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(eventMAC(secret, ts, body))
}

func eventMAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// VerifyEvent checks an X-DDCTL-Signature over body: the MAC, in constant
// time, and a timestamp within tolerance of now either way.
func VerifyEvent(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, _ := bytes.Cut(part, []byte("="))
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sig = string(v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("event signature: want t=<unix>,v1=<hex>")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("event signature: timestamp %s is outside the %s window", time.Unix(sec, 0).UTC().Format(time.RFC3339), tolerance)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, eventMAC(secret, ts, body)) {
		return fmt.Errorf("event signature: does not verify")
	}
	return nil
}

// sendEvents posts pending events until ctx is done: after each cycle and
// every few seconds, oldest first, one at a time so that the receiver
// sees them in order of their IDs (a failed one is tried again with
// backoff, and the ones after it wait for it).
func (d *Daemon) sendEvents(ctx context.Context) {
	if n, err := d.cfg.Store.ExpireEvents(ctx, d.now().Add(-eventMaxAge)); err != nil {
		d.log.Warn("expire old events", "error", err)
	} else if n > 0 {
		d.log.Info("events older than a day are not sent", "count", n)
	}
	t := time.NewTicker(eventPoll)
	defer t.Stop()
	for {
		// An event the receiver keeps refusing holds back the ones after
		// it, for at most a day: then it is set aside with them.
		if _, err := d.cfg.Store.ExpireEvents(ctx, d.now().Add(-eventMaxAge)); err != nil && ctx.Err() == nil {
			d.log.Warn("expire old events", "error", err)
		}
		d.deliverEvents(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.delivered:
		}
	}
}

func (d *Daemon) deliverEvents(ctx context.Context) {
	d.mu.Lock()
	loc := d.loc
	d.mu.Unlock()
	if loc == nil {
		// An occurrence's address is written in the configured zone. The
		// first cycle may wait behind an apply's lock; reading the applied
		// configuration needs no lock.
		a, ok, err := d.cfg.Store.AppliedSpec(ctx)
		if err != nil || !ok {
			return
		}
		cfg, err := d.parts.Load().LoadSpecFunc(a.Body)
		if err != nil {
			return // the cycle reports why
		}
		loc = cfg.Settings.Location
		d.mu.Lock()
		d.loc = loc
		d.mu.Unlock()
	}
	for ctx.Err() == nil {
		// All pending events, due or not, so that one waiting for its
		// retry holds back the ones after it: the receiver sees them in
		// order.
		events, err := d.cfg.Store.PendingEvents(ctx, time.Unix(1<<40, 0), 50)
		if err != nil {
			d.log.Warn("read pending events", "error", err)
			return
		}
		if len(events) == 0 {
			return
		}
		for _, e := range events {
			if e.NextAt.After(d.now()) {
				return
			}
			if err := d.postEvent(ctx, eventOf(e, loc)); err != nil {
				wait := min(10*time.Second<<min(e.Attempts, 12), eventRetryMax)
				d.metrics.events.WithLabelValues(string(e.Type), "failed").Inc()
				d.log.Warn("event not delivered", "event_id", e.ID, "type", e.Type, "attempt", e.Attempts+1, "error", err)
				if err := d.cfg.Store.MarkEventFailed(context.WithoutCancel(ctx), e.ID, err.Error(), d.now().Add(jitter(wait, 0.2))); err != nil {
					d.log.Warn("record event failure", "error", err)
				}
				return // in order: the rest wait for this one
			}
			d.metrics.events.WithLabelValues(string(e.Type), "delivered").Inc()
			if err := d.cfg.Store.MarkEventDelivered(context.WithoutCancel(ctx), e.ID, d.now()); err != nil {
				d.log.Warn("record event delivery", "error", err)
				return
			}
		}
	}
}

func (d *Daemon) postEvent(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.EventURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(EventIDHeader, strconv.FormatInt(e.ID, 10))
	req.Header.Set(EventSignatureHeader, SignEvent([]byte(d.cfg.EventSecret.Reveal()), time.Now(), body))
	resp, err := d.cfg.EventClient.Do(req)
	if err != nil {
		// Not the URL: its path or query may hold the receiver's token.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return fmt.Errorf("post to the event URL's host %s: %w", req.URL.Host, uerr.Err)
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the receiver answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// eventURLAllowed: events go over https, or over http to this machine
// only.
func eventURLAllowed(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" {
		return false
	}
	return parsed.Scheme == "https" || (parsed.Scheme == "http" && spec.IsLoopback(u))
}
