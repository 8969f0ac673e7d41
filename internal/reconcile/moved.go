package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// Move is a moved block the plan carries out: the state's entries at From
// become To's, with no call to DOKU (principle 8, docs/principles.md). A plan
// decides as if it were done; apply does it, in one state transaction,
// before anything is sent.
type Move struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Block   bool   `json:"block,omitempty"` // every instance of the block, keys kept
	Entries int    `json:"entries"`         // refunds, bindings and charge attempts that move
}

// planMoves finds the moved blocks of cfg that have entries to move in the
// state. A move is refused, as a plan error, while an operation of an
// entry it moves is unsettled, or when an entry would land on an address
// the state already has; nothing is then sent for the instances it would
// move to (they are added to g.blocked). It returns the moves to carry
// out.
func (e *Engine) planMoves(ctx context.Context, p *Plan, cfg *spec.Config, g *guard) ([]spec.Moved, error) {
	if len(cfg.Moved) == 0 {
		return nil, nil
	}
	refunds, err := e.Store.Refunds(ctx)
	if err != nil {
		return nil, fmt.Errorf("read refunds: %w", err)
	}
	charges, err := e.Store.Charges(ctx)
	if err != nil {
		return nil, fmt.Errorf("read charges: %w", err)
	}
	bindings, err := e.Store.Bindings(ctx)
	if err != nil {
		return nil, fmt.Errorf("read bindings: %w", err)
	}
	open, err := e.Store.OpenOperations(ctx)
	if err != nil {
		return nil, fmt.Errorf("read open operations: %w", err)
	}
	have := map[string]int{} // rows at each address
	for a := range refunds {
		have[a]++
	}
	for a := range bindings {
		have[a]++
	}
	for _, c := range charges {
		have[c.Address]++
	}
	block := func(m spec.Moved, summary, detail string) {
		p.Errors = append(p.Errors, Problem{Address: m.To, Summary: summary,
			Detail: fmt.Sprintf("%s (at %s:%d): %s", m, m.DeclRange.Filename, m.DeclRange.Start.Line, detail)})
		for _, c := range cfg.Addresses() {
			if c == m.To || m.Block && strings.HasPrefix(c, m.To+"[") {
				g.blocked[c] = true
			}
		}
	}
	var out []spec.Moved
	claimed := map[string]bool{} // destinations of the moves planned so far
	for _, m := range cfg.Moved {
		entries, conflict := 0, ""
		var dests []string
		for a, n := range have {
			d, ok := m.Apply(a)
			if !ok {
				continue
			}
			entries += n
			dests = append(dests, d)
			if claimed[d] {
				conflict = d
			}
			if have[d] > 0 {
				if _, away := cfg.Destination(d); !away {
					conflict = d
				}
			}
		}
		if entries == 0 {
			continue // done before, or nothing was ever there: nothing to move
		}
		if conflict != "" {
			block(m, "moved block cannot move: the destination has entries",
				fmt.Sprintf("the state already has %s. Nothing was sent for either. Remove the moved block if it was carried out before; if the entries at %s are wrong, forget them with ddctl state rm %s.", conflict, conflict, conflict))
			continue
		}
		if i := slices.IndexFunc(open, func(op state.Operation) bool { _, ok := m.Apply(op.Address); return ok }); i >= 0 {
			op := open[i]
			block(m, "moved block waits for an unsettled request",
				fmt.Sprintf("the outcome of %s's %s request (key %s) is not known yet, and an entry moves only with its outcome settled. Nothing was sent for %s; the move is made by the first plan after DOKU says what happened.", op.Address, op.Kind, op.IdempotencyKey, m.To))
			continue
		}
		for _, d := range dests {
			claimed[d] = true
		}
		out = append(out, m)
		p.Moved = append(p.Moved, Move{From: m.From, To: m.To, Block: m.Block, Entries: entries})
	}
	return out, nil
}

// movedStore is the state as a plan sees it when moved blocks are still
// to be carried out: entries read at their new addresses, and what the
// plan writes (an answer from DOKU, an adopted refund) written at the old
// ones, where apply's Move finds them. Nothing else changes.
type movedStore struct {
	Store
	moves []spec.Moved
}

// fwd is where the moves send addr; addr itself when none does.
func (s movedStore) fwd(addr string) string {
	for _, m := range s.moves {
		if to, ok := m.Apply(addr); ok {
			return to
		}
	}
	return addr
}

// back is the old address of addr, a new one; addr itself when no move
// leads to it.
func (s movedStore) back(addr string) string {
	base, rest := addr, ""
	if i := strings.Index(addr, "#"); i >= 0 {
		base, rest = addr[:i], addr[i:]
	}
	for _, m := range s.moves {
		switch {
		case base == m.To:
			return m.From + rest
		case m.Block && strings.HasPrefix(base, m.To+"["):
			return m.From + base[len(m.To):] + rest
		}
	}
	return addr
}

func (s movedStore) Refunds(ctx context.Context) (map[string]state.Refund, error) {
	in, err := s.Store.Refunds(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]state.Refund, len(in))
	for _, r := range in {
		r.Address = s.fwd(r.Address)
		out[r.Address] = r
	}
	return out, nil
}

func (s movedStore) charge(c state.Charge) state.Charge {
	c.Address, c.BindingAddress = s.fwd(c.Address), s.fwd(c.BindingAddress)
	return c
}

func (s movedStore) Charges(ctx context.Context) ([]state.Charge, error) {
	rows, err := s.Store.Charges(ctx)
	for i := range rows {
		rows[i] = s.charge(rows[i])
	}
	return rows, err
}

func (s movedStore) EntryAddresses(ctx context.Context) (charges, bindings []string, err error) {
	charges, bindings, err = s.Store.EntryAddresses(ctx)
	for i := range charges {
		charges[i] = s.fwd(charges[i])
	}
	for i := range bindings {
		bindings[i] = s.fwd(bindings[i])
	}
	return charges, bindings, err
}

func (s movedStore) ChargeByKey(ctx context.Context, key string) (state.Charge, bool, error) {
	c, ok, err := s.Store.ChargeByKey(ctx, key)
	return s.charge(c), ok, err
}

func (s movedStore) Bindings(ctx context.Context) (map[string]state.Binding, error) {
	in, err := s.Store.Bindings(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]state.Binding, len(in))
	for _, b := range in {
		b.Address = s.fwd(b.Address)
		out[b.Address] = b
	}
	return out, nil
}

func (s movedStore) Binding(ctx context.Context, address string) (state.Binding, bool, error) {
	b, ok, err := s.Store.Binding(ctx, s.back(address))
	b.Address = s.fwd(b.Address)
	return b, ok, err
}

func (s movedStore) ops(in []state.Operation, err error) ([]state.Operation, error) {
	for i := range in {
		in[i].Address = s.fwd(in[i].Address)
	}
	return in, err
}

func (s movedStore) OpenOperations(ctx context.Context) ([]state.Operation, error) {
	return s.ops(s.Store.OpenOperations(ctx))
}

func (s movedStore) Operations(ctx context.Context, address string) ([]state.Operation, error) {
	if address == "" {
		return s.ops(s.Store.Operations(ctx, ""))
	}
	return s.ops(s.Store.Operations(ctx, s.back(address)))
}

func (s movedStore) AdoptRefund(ctx context.Context, r state.Refund, now time.Time) error {
	r.Address = s.back(r.Address)
	return s.Store.AdoptRefund(ctx, r, now)
}

func (s movedStore) PutCharge(ctx context.Context, c state.Charge, now time.Time) error {
	c.Address, c.BindingAddress = s.back(c.Address), s.back(c.BindingAddress)
	return s.Store.PutCharge(ctx, c, now)
}

func (s movedStore) PutBinding(ctx context.Context, b state.Binding, now time.Time) error {
	b.Address = s.back(b.Address)
	return s.Store.PutBinding(ctx, b, now)
}

func (s movedStore) RecordVerified(ctx context.Context, address string, keys []string, now time.Time) error {
	return s.Store.RecordVerified(ctx, s.back(address), keys, now)
}

func (s movedStore) RecordRefundIntent(ctx context.Context, op state.Operation, r state.Refund, now time.Time) (int64, error) {
	op.Address, r.Address = s.back(op.Address), s.back(r.Address)
	return s.Store.RecordRefundIntent(ctx, op, r, now)
}

func (s movedStore) RecordIntent(ctx context.Context, op state.Operation, now time.Time) (int64, error) {
	op.Address = s.back(op.Address)
	return s.Store.RecordIntent(ctx, op, now)
}

// applyMoves carries out the plan's moves, before anything is sent. A move
// that fails stops the apply: the plan's decisions assumed it.
func (e *Engine) applyMoves(ctx context.Context, p *Plan, runID int64) error {
	for _, m := range p.Moved {
		n, err := e.Store.Move(ctx, m.From, m.To, m.Block, runID, e.now())
		if err != nil {
			return fmt.Errorf("moved block %s to %s: %w", m.From, m.To, err)
		}
		e.log().Info("moved", "from", m.From, "to", m.To, "entries", n)
	}
	return nil
}
