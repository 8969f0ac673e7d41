package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// clock is the sandbox's time: the wall clock (or Config.NowFunc) moved by
// an offset that POST /sandbox/clock sets, so that tests and demos reach
// an expiry or DOKU's day boundary without waiting.
type clock struct {
	base   func() time.Time
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.offset = t.Sub(c.base())
	c.mu.Unlock()
}

func (s *Server) now() time.Time { return s.clock.now() }

// Now is the sandbox's time, for a client that should share its clock.
func (s *Server) Now() time.Time { return s.clock.now() }

// Advance moves the sandbox's clock forward by d and settles what fell due.
func (s *Server) Advance(ctx context.Context, d time.Duration) error {
	s.clock.advance(d)
	return s.Tick(ctx)
}

// handleClock reads (GET) or moves (POST {"advance": "1h"} or
// {"set": "2026-12-01T00:00:00+07:00"}) the sandbox's clock.
func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			Advance string    `json:"advance"`
			Set     time.Time `json:"set"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, `body: want {"advance": "1h30m"} or {"set": "2026-12-01T00:00:00+07:00"}: `+err.Error(), http.StatusBadRequest)
			return
		}
		switch {
		case !req.Set.IsZero():
			s.clock.set(req.Set)
		case req.Advance != "":
			d, err := time.ParseDuration(req.Advance)
			if err != nil || d < 0 {
				http.Error(w, "advance: want a positive Go duration such as 90m", http.StatusBadRequest)
				return
			}
			s.clock.advance(d)
		}
		if err := s.Tick(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]time.Time{"now": s.now()})
}

// tickEvery is how often the background loop settles what fell due.
const tickEvery = 20 * time.Millisecond

func (s *Server) loop() {
	defer close(s.done)
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Tick(context.Background()); err != nil {
				s.log.Warn("sandbox tick", "error", err)
			}
		}
	}
}

// Tick settles what fell due by the sandbox's clock: confirmations that
// auto-approve, confirmations that expired (their payment fails, their
// binding is rejected), and notifications to deliver or retry.
func (s *Server) Tick(ctx context.Context) error {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	if err := s.settleDue(ctx); err != nil {
		return err
	}
	return s.deliverNotifications(ctx)
}

func (s *Server) settleDue(ctx context.Context) error {
	now := s.now()
	var due []struct {
		ID        string `db:"id"`
		CreatedAt string `db:"created_at"`
	}
	if err := s.ledger.db.SelectContext(ctx, &due, `SELECT id, created_at FROM confirmations WHERE status = 'pending'`); err != nil {
		return err
	}
	for _, c := range due {
		created, err := time.Parse(time.RFC3339Nano, c.CreatedAt)
		if err != nil {
			continue
		}
		expires := created.Add(s.cfg.PaymentExpiry)
		approves := s.cfg.AutoApprove > 0 && s.cfg.AutoApprove < s.cfg.PaymentExpiry
		var approve bool
		switch {
		case approves && !now.Before(created.Add(s.cfg.AutoApprove)):
			approve = true // the customer answered before it expired
		case !now.Before(expires):
			approve = false
		default:
			continue
		}
		if err := s.Confirm(ctx, c.ID, approve); err != nil && !errorsIsSettled(err) {
			return err
		}
	}
	return nil
}
