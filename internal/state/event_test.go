package state_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

// allEvents lists every event in s.
func allEvents(tb testing.TB, s *state.Store) []state.Event {
	tb.Helper()
	evs, err := s.Events(context.Background(), 0, 0)
	if err != nil {
		tb.Fatalf("Events: %v", err)
	}
	return evs
}

// ignoreDelivery compares what an event says, not how its delivery goes.
var ignoreDelivery = cmpopts.IgnoreFields(state.Event{}, "ID", "Status", "Attempts", "NextAt", "LastError", "DeliveredAt")

func TestChargeEvents(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	occ := time.Date(2026, 12, 1, 2, 0, 0, 0, time.FixedZone("WIB", 7*3600))
	c := state.Charge{Address: `charge.monthly["alice"]`, Occurrence: occ, Attempt: 1, PartnerReferenceNo: "K-1",
		Amount: 15000000, BindingAddress: "binding.alice", Status: state.ChargePending}
	put := func(c state.Charge, at time.Time) {
		t.Helper()
		if err := s.PutCharge(ctx, c, at); err != nil {
			t.Fatalf("PutCharge %s: %v", c.Status, err)
		}
	}
	put(c, t0)
	put(c, t0) // journalled twice: still nothing to tell
	c.Status, c.ReferenceNo, c.WebRedirectURL, c.SNAPCode, c.Message = state.ChargeAwaitingCustomer, "D-1", "https://pay.example/otp/1", "2005400", "Successful"
	put(c, t0.Add(time.Second))
	put(c, t0.Add(2*time.Second)) // a resolver writing the same status again
	c.Status, c.SNAPCode, c.Message = state.ChargeSucceeded, "2005500", "paid"
	put(c, t0.Add(time.Minute))
	put(c, t0.Add(2*time.Minute)) // a duplicate notification
	// A deferral (insufficient balance, no request sent) is an attempt
	// that failed.
	deferral := state.Charge{Address: c.Address, Occurrence: occ.AddDate(0, 1, 0), Attempt: 1, PartnerReferenceNo: "K-2",
		Amount: 15000000, BindingAddress: "binding.alice", Status: state.ChargeFailed, Message: "deferred: insufficient balance"}
	put(deferral, t0.Add(time.Hour))
	// failed then expired: one failure to tell, not two.
	deferral.Status = state.ChargeExpired
	put(deferral, t0.Add(2*time.Hour))
	// A deferred row tells nothing.
	put(state.Charge{Address: c.Address, Occurrence: occ.AddDate(0, 2, 0), Attempt: 1, PartnerReferenceNo: "K-3",
		BindingAddress: "binding.alice", Status: state.ChargeDeferred}, t0)

	occUTC := occ.UTC()
	want := []state.Event{
		{Type: state.EventChargeAwaitingCustomer, Address: c.Address, Occurrence: occUTC, Key: "K-1", Amount: 15000000,
			ReferenceNo: "D-1", SNAPCode: "2005400", Message: "Successful", Link: "https://pay.example/otp/1", CreatedAt: t0.Add(time.Second)},
		{Type: state.EventChargeSucceeded, Address: c.Address, Occurrence: occUTC, Key: "K-1", Amount: 15000000,
			ReferenceNo: "D-1", SNAPCode: "2005500", Message: "paid", CreatedAt: t0.Add(time.Minute)},
		{Type: state.EventChargeFailed, Address: c.Address, Occurrence: occ.AddDate(0, 1, 0).UTC(), Key: "K-2", Amount: 15000000,
			Message: "deferred: insufficient balance", CreatedAt: t0.Add(time.Hour)},
	}
	got := allEvents(t, s)
	if diff := cmp.Diff(want, got, ignoreDelivery); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	for _, e := range got {
		if e.Status != state.EventPending || e.Attempts != 0 || !e.NextAt.Equal(e.CreatedAt) {
			t.Errorf("event %d: status=%s attempts=%d next=%v, want pending, due at once", e.ID, e.Status, e.Attempts, e.NextAt)
		}
	}

	t.Run("Adopted", func(t *testing.T) {
		// Found succeeded by status inquiry, with no row before.
		put(state.Charge{Address: "charge.once", Occurrence: occ, Attempt: 1, PartnerReferenceNo: "K-9", Amount: 500,
			BindingAddress: "binding.alice", Status: state.ChargeSucceeded}, t0)
		evs := allEvents(t, s)
		if last := evs[len(evs)-1]; last.Type != state.EventChargeSucceeded || last.Key != "K-9" {
			t.Fatalf("last event=%+v, want charge.succeeded for K-9", last)
		}
	})
}

// An event is stored with its change or not at all.
func TestEventAtomic(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	s := open(t, path)
	c := state.Charge{Address: "charge.m", Occurrence: t0, Attempt: 1, PartnerReferenceNo: "K-1", Amount: 100,
		BindingAddress: "binding.alice", Status: state.ChargeSucceeded}
	if err := s.PutCharge(ctx, c, t0); err != nil {
		t.Fatal(err)
	}
	n := len(allEvents(t, s))

	t.Run("FailedChange", func(t *testing.T) {
		late := c
		late.Status = state.ChargeFailed
		if err := s.PutCharge(ctx, late, t0); !errors.Is(err, state.ErrChargeSucceeded) {
			t.Fatalf("err=%v, want ErrChargeSucceeded", err)
		}
		dup := c // another attempt under a key already used
		dup.Attempt, dup.Status = 2, state.ChargeAwaitingCustomer
		if err := s.PutCharge(ctx, dup, t0); err == nil {
			t.Fatal("two attempts share a key")
		}
		if got := allEvents(t, s); len(got) != n {
			t.Fatalf("events after failed writes: %+v, want %d", got, n)
		}
	})
	t.Run("FailedEvent", func(t *testing.T) {
		db := rawDB(t, path)
		if _, err := db.Exec(`CREATE TRIGGER no_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'outbox full'); END`); err != nil {
			t.Fatal(err)
		}
		serial0, _ := s.Serial(ctx)
		next := state.Charge{Address: "charge.m", Occurrence: t0.AddDate(0, 1, 0), Attempt: 1, PartnerReferenceNo: "K-2",
			Amount: 100, BindingAddress: "binding.alice", Status: state.ChargeAwaitingCustomer, WebRedirectURL: "https://pay.example/2"}
		if err := s.PutCharge(ctx, next, t0); err == nil || !strings.Contains(err.Error(), "outbox full") {
			t.Fatalf("PutCharge with the outbox refusing: err=%v", err)
		}
		if got, ok, err := s.ChargeByKey(ctx, "K-2"); ok || err != nil {
			t.Fatalf("the charge was stored without its event: %+v %v", got, err)
		}
		if err := s.PutBinding(ctx, state.Binding{Address: "binding.alice", CustomerID: "C-1", Status: state.BindingActive}, t0); err == nil {
			t.Fatal("PutBinding succeeded with the outbox refusing")
		}
		if _, ok, _ := s.Binding(ctx, "binding.alice"); ok {
			t.Fatal("the binding was stored without its event")
		}
		if serial, _ := s.Serial(ctx); serial != serial0 {
			t.Fatalf("serial=%d, want %d: nothing was written", serial, serial0)
		}
		if _, err := db.Exec(`DROP TRIGGER no_events`); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCharge(ctx, next, t0); err != nil {
			t.Fatal(err)
		}
		if got := allEvents(t, s); len(got) != n+1 || got[n].Link != "https://pay.example/2" {
			t.Fatalf("events=%+v, want one more, with the link", got)
		}
	})
}

func TestRefundEvents(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	run, _ := s.StartRun(ctx, state.Run{Command: "apply", StartedAt: t0})
	intent := func(addr, key string) int64 {
		t.Helper()
		r := state.Refund{Address: addr, Payment: "INV-1", Amount: 500, PartnerRefundNo: key}
		id, err := s.RecordRefundIntent(ctx, state.Operation{RunID: run, Address: addr, IdempotencyKey: key,
			ExternalID: "X-" + key, Request: []byte(`{}`)}, r, t0)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	outcome := func(id int64, o state.Outcome, at time.Time) {
		t.Helper()
		if err := s.RecordRefundOutcome(ctx, id, o, at); err != nil {
			t.Fatal(err)
		}
	}

	// refund.a: unknown first (nothing to tell), then succeeded.
	a := intent("refund.a", "KEY-A")
	outcome(a, state.Outcome{Status: state.OpUnknown}, t0)
	// The resolver re-settles by inquiry with a new operation.
	if err := s.RecordOutcome(ctx, a, state.Outcome{Status: state.OpNotReceived}, t0); err != nil {
		t.Fatal(err)
	}
	a2 := intent("refund.a", "KEY-A")
	outcome(a2, state.Outcome{Status: state.OpSucceeded, HTTPStatus: 200, SNAPCode: "2005800", Message: "Successful", RefundNo: "RF-1"}, t0.Add(time.Minute))
	// refund.b: refused for good.
	b := intent("refund.b", "KEY-B")
	outcome(b, state.Outcome{Status: state.OpFailed, HTTPStatus: 404, SNAPCode: "4045801", Message: "Transaction Not Found"}, t0.Add(2*time.Minute))
	// refund.c: found at DOKU by inquiry; adopted twice, told once.
	adopted := state.Refund{Address: "refund.c", Payment: "INV-2", Amount: 700, PartnerRefundNo: "KEY-C", RefundNo: "RF-3"}
	for range 2 {
		if err := s.AdoptRefund(ctx, adopted, t0.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// Adopting refund.a, already succeeded, tells nothing new.
	if err := s.AdoptRefund(ctx, state.Refund{Address: "refund.a", Payment: "INV-1", Amount: 500, PartnerRefundNo: "KEY-A", RefundNo: "RF-1"}, t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}

	want := []state.Event{
		{Type: state.EventRefundSucceeded, Address: "refund.a", Key: "KEY-A", Amount: 500, ReferenceNo: "RF-1",
			SNAPCode: "2005800", Message: "Successful", CreatedAt: t0.Add(time.Minute)},
		{Type: state.EventRefundFailed, Address: "refund.b", Key: "KEY-B", Amount: 500,
			SNAPCode: "4045801", Message: "Transaction Not Found", CreatedAt: t0.Add(2 * time.Minute)},
		{Type: state.EventRefundSucceeded, Address: "refund.c", Key: "KEY-C", Amount: 700, ReferenceNo: "RF-3",
			Message: "found at DOKU by status inquiry", CreatedAt: t0.Add(3 * time.Minute)},
	}
	if diff := cmp.Diff(want, allEvents(t, s), ignoreDelivery); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestBindingEvents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	s := openWith(t, path, state.OpenOptions{AllowPlaintextSecrets: true})
	const phone = "6281234567890"
	b := state.Binding{Address: "binding.alice", CustomerID: "C-1", Phone: phone, Status: state.BindingPending,
		ReferenceNo: "R-1", RedirectURL: "https://pay.example/bind", AuthCode: secret.New("AUTHCANARY")}
	put := func(at time.Time) {
		t.Helper()
		if err := s.PutBinding(ctx, b, at); err != nil {
			t.Fatal(err)
		}
	}
	put(t0)
	put(t0)
	b.Status, b.CustomerToken = state.BindingActive, secret.New("TOKENCANARY")
	put(t0.Add(time.Minute))
	b.CustomerToken = secret.New("TOKENCANARY-2") // a refreshed token: no new status
	put(t0.Add(2 * time.Minute))
	b.Status = state.BindingUnbound
	put(t0.Add(time.Hour))
	put(t0.Add(2 * time.Hour))
	// A failed binding tells nothing.
	if err := s.PutBinding(ctx, state.Binding{Address: "binding.bob", CustomerID: "C-2", Status: state.BindingFailed}, t0); err != nil {
		t.Fatal(err)
	}

	want := []state.Event{
		{Type: state.EventBindingActive, Address: "binding.alice", ReferenceNo: "R-1", CreatedAt: t0.Add(time.Minute)},
		{Type: state.EventBindingRemoved, Address: "binding.alice", ReferenceNo: "R-1", CreatedAt: t0.Add(time.Hour)},
	}
	if diff := cmp.Diff(want, allEvents(t, s), ignoreDelivery); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	// No secret and no phone number, in any column.
	rows, err := rawDB(t, path).Query(`SELECT * FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			var text string
			switch v := v.(type) {
			case string:
				text = v
			case []byte:
				text = string(v)
			}
			for _, leak := range []string{"CANARY", phone} {
				if strings.Contains(text, leak) {
					t.Errorf("events.%s holds %q", cols[i], leak)
				}
			}
		}
	}
}

func TestEventDelivery(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	for i, key := range []string{"K-1", "K-2", "K-3"} {
		c := state.Charge{Address: "charge.m", Occurrence: t0.AddDate(0, i, 0), Attempt: 1, PartnerReferenceNo: key,
			Amount: 100, BindingAddress: "binding.alice", Status: state.ChargeSucceeded}
		if err := s.PutCharge(ctx, c, t0.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	serial0, _ := s.Serial(ctx)
	keys := func(evs []state.Event) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.Key)
		}
		return out
	}
	pending := func(now time.Time, limit int) []string {
		t.Helper()
		evs, err := s.PendingEvents(ctx, now, limit)
		if err != nil {
			t.Fatalf("PendingEvents: %v", err)
		}
		return keys(evs)
	}
	if diff := cmp.Diff([]string{"K-1", "K-2", "K-3"}, pending(t0.Add(3*time.Hour), 0)); diff != "" {
		t.Fatalf("pending (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"K-1", "K-2"}, pending(t0.Add(3*time.Hour), 2)); diff != "" {
		t.Fatalf("pending, limit 2 (-want +got):\n%s", diff)
	}
	// Not before it was created.
	if diff := cmp.Diff([]string{"K-1"}, pending(t0.Add(30*time.Minute), 0)); diff != "" {
		t.Fatalf("pending at t0+30m (-want +got):\n%s", diff)
	}
	evs := allEvents(t, s)
	first, second, third := evs[0].ID, evs[1].ID, evs[2].ID

	t.Run("Failed", func(t *testing.T) {
		// Half a second later: due then, not at t0 (a fraction of a
		// second must sort after the whole second).
		next := t0.Add(500 * time.Millisecond)
		if err := s.MarkEventFailed(ctx, first, "POST https://hooks.example: 503 Service Unavailable", next); err != nil {
			t.Fatal(err)
		}
		if got := pending(t0, 0); len(got) != 0 {
			t.Fatalf("pending at t0 after a failure: %v, want none until %v", got, next)
		}
		if got := pending(next, 0); len(got) != 1 || got[0] != "K-1" {
			t.Fatalf("pending at %v: %v, want K-1", next, got)
		}
		if err := s.MarkEventFailed(ctx, first, strings.Repeat("é", state.MaxEventError), t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		e := allEvents(t, s)[0]
		if e.Attempts != 2 || !e.NextAt.Equal(t0.Add(time.Minute)) || e.Status != state.EventPending ||
			len(e.LastError) > state.MaxEventError || !strings.HasPrefix(e.LastError, "éé") || strings.ContainsRune(e.LastError, '\uFFFD') {
			t.Fatalf("after two failures: attempts=%d next=%v status=%s len(last error)=%d", e.Attempts, e.NextAt, e.Status, len(e.LastError))
		}
		if err := s.MarkEventFailed(ctx, 999, "x", t0); err == nil {
			t.Fatal("an unknown event was marked failed")
		}
	})
	t.Run("Delivered", func(t *testing.T) {
		if err := s.MarkEventDelivered(ctx, first, t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEventDelivered(ctx, first, t0.Add(time.Hour)); err != nil {
			t.Fatalf("delivered twice: %v", err)
		}
		// A late failure report does not undo a delivery.
		if err := s.MarkEventFailed(ctx, first, "timeout", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		e := allEvents(t, s)[0]
		if e.Status != state.EventDelivered || e.Attempts != 3 || !e.DeliveredAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("after delivery: %+v", e)
		}
		if got := pending(t0.Add(3*time.Hour), 0); !cmp.Equal(got, []string{"K-2", "K-3"}) {
			t.Fatalf("pending after delivery: %v", got)
		}
		if err := s.MarkEventDelivered(ctx, 999, t0); err == nil {
			t.Fatal("an unknown event was marked delivered")
		}
	})
	t.Run("Expired", func(t *testing.T) {
		// K-1 is delivered; of K-2 (t0+1h) and K-3 (t0+2h) only K-2 is
		// older than t0+1h30m.
		n, err := s.ExpireEvents(ctx, t0.Add(90*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("ExpireEvents=%d, %v, want 1", n, err)
		}
		if got := pending(t0.Add(3*time.Hour), 0); !cmp.Equal(got, []string{"K-3"}) {
			t.Fatalf("pending after expiry: %v", got)
		}
		if n, err := s.ExpireEvents(ctx, t0.Add(90*time.Minute)); err != nil || n != 0 {
			t.Fatalf("ExpireEvents again=%d, %v, want 0", n, err)
		}
		statuses := map[int64]state.EventStatus{}
		for _, e := range allEvents(t, s) {
			statuses[e.ID] = e.Status
		}
		want := map[int64]state.EventStatus{first: state.EventDelivered, second: state.EventExpired, third: state.EventPending}
		if diff := cmp.Diff(want, statuses); diff != "" {
			t.Fatalf("statuses (-want +got):\n%s", diff)
		}
	})
	t.Run("Events", func(t *testing.T) {
		got, err := s.Events(ctx, first, 1)
		if err != nil || len(got) != 1 || got[0].ID != second {
			t.Fatalf("Events(after %d, 1)=%+v, %v, want event %d", first, got, err, second)
		}
		if got, err := s.Events(ctx, third, 0); err != nil || len(got) != 0 {
			t.Fatalf("Events after the last=%+v, %v", got, err)
		}
	})
	if serial, _ := s.Serial(ctx); serial != serial0 {
		t.Fatalf("serial=%d after delivery bookkeeping, want %d", serial, serial0)
	}
}

func TestEventTypeString(t *testing.T) {
	for typ, want := range map[state.EventType]string{
		state.EventChargeAwaitingCustomer: "charge.awaiting_customer",
		state.EventChargeSucceeded:        "charge.succeeded",
		state.EventChargeFailed:           "charge.failed",
		state.EventRefundSucceeded:        "refund.succeeded",
		state.EventRefundFailed:           "refund.failed",
		state.EventBindingActive:          "binding.active",
		state.EventBindingRemoved:         "binding.removed",
	} {
		if typ.String() != want {
			t.Errorf("%q.String()=%q", want, typ.String())
		}
	}
}
