package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

// DOKU is what reconcile asks of DOKU. *doku.Client has it.
type DOKU interface {
	Refund(ctx context.Context, req doku.RefundRequest, opts doku.RequestOptions) (*doku.RefundResponse, error)
	PaymentStatus(ctx context.Context, req doku.StatusRequest, opts doku.RequestOptions) (*doku.StatusResponse, error)
	BindAccount(ctx context.Context, req doku.BindingRequest, opts doku.RequestOptions) (*doku.BindingResponse, error)
	Balance(ctx context.Context, opts doku.RequestOptions) (*doku.BalanceResponse, error)
	Pay(ctx context.Context, req doku.PaymentRequest, opts doku.RequestOptions) (*doku.PaymentResponse, error)
	Unbind(ctx context.Context, opts doku.RequestOptions) (*doku.UnbindingResponse, error)
	CustomerToken(ctx context.Context, authCode secret.Value) (secret.Value, error)
}

// Store is what reconcile reads from and writes to the state file.
// *state.Store has it.
type Store interface {
	Lineage() string
	Serial(ctx context.Context) (int64, error)
	Refunds(ctx context.Context) (map[string]state.Refund, error)
	Payments(ctx context.Context) (map[string]state.Payment, error)
	PutPayment(ctx context.Context, p state.Payment) error
	AdoptRefund(ctx context.Context, r state.Refund, now time.Time) error
	RecordRefundIntent(ctx context.Context, op state.Operation, r state.Refund, now time.Time) (int64, error)
	RecordRefundOutcome(ctx context.Context, opID int64, o state.Outcome, now time.Time) error
	OpenOperations(ctx context.Context) ([]state.Operation, error)
	Operations(ctx context.Context, address string) ([]state.Operation, error)
	RecordIntent(ctx context.Context, op state.Operation, now time.Time) (int64, error)
	Charges(ctx context.Context) ([]state.Charge, error)
	ChargeByKey(ctx context.Context, partnerReferenceNo string) (state.Charge, bool, error)
	PutCharge(ctx context.Context, c state.Charge, now time.Time) error
	RecordOutcome(ctx context.Context, opID int64, o state.Outcome, now time.Time) error
	Bindings(ctx context.Context) (map[string]state.Binding, error)
	Binding(ctx context.Context, address string) (state.Binding, bool, error)
	KeepsSecrets() bool
	PutBinding(ctx context.Context, b state.Binding, now time.Time) error

	// What keeps a money move's identity across restores and renames.
	Continuity(ctx context.Context) (state.Continuity, error)
	KeySeen(ctx context.Context, key string) (time.Time, bool, error)
	RecordVerified(ctx context.Context, address string, keys []string, now time.Time) error
	Move(ctx context.Context, from, to string, block bool, runID int64, now time.Time) (int, error)
	Spent(ctx context.Context, since time.Time) (refunds, charges money.Amount, err error)
	EntryAddresses(ctx context.Context) (charges, bindings []string, err error)
}

// DefaultParallelism is how many actions apply runs at once (as Terraform).
const DefaultParallelism = 10

// Engine plans and applies. Its fields are set once; it is safe for
// concurrent use if DOKU and Store are.
type Engine struct {
	DOKU        DOKU
	Store       Store
	Logger      *slog.Logger
	Parallelism int // calls at once, in apply and in plan's inquiries; default DefaultParallelism
	// NowFunc is the wall clock for journal times and X-EXTERNAL-IDs (the
	// plan's own "now" is an argument, so that -at can move it).
	NowFunc func() time.Time
	// CrashFunc, a test hook, is called at each CrashPoint an action
	// passes (see CrashPoints), with the action's kind and address; a
	// crash test aborts the process there. It may be called from several
	// goroutines at once, CrashAfterSend from the HTTP transport's. When it
	// returns, apply goes on. Nil, the default, calls nothing.
	CrashFunc func(point CrashPoint, kind ActionKind, address string)
	// NoCustomerSecrets plans without customers' secrets, as a plan of an
	// unreviewed change runs (no state key): no customer token is asked
	// for, so a charge's balance is not checked (the charge is shown as
	// it would be sent) and a pending binding is not looked at. Such a
	// plan is for review only: Apply refuses it.
	NoCustomerSecrets bool
	// SettleTime is how long after a request whose outcome is unknown
	// a status inquiry that finds no record of it may conclude that DOKU
	// never got it, so that it is sent again: sooner, "no record" may only
	// mean "not yet" (a request still on its way, processed late). Until
	// then the outcome stays open and nothing is sent for its address.
	// The time of the request is its intent's in the journal, by NowFunc.
	// ddctl sets doku.settle_time (default 60 s); 0 concludes at once.
	SettleTime time.Duration
}

func (e *Engine) log() *slog.Logger { return cmp.Or(e.Logger, slog.New(slog.DiscardHandler)) }

// settling reports whether a request sent at sent is still within the
// settle time, and until when: an inquiry that finds no record of it
// concludes nothing yet.
func (e *Engine) settling(sent time.Time) (until time.Time, early bool) {
	until = sent.Add(e.SettleTime)
	return until, e.SettleTime > 0 && e.now().Before(until)
}

// settlingDetail is what an open outcome says while it settles.
func settlingDetail(asked, until time.Time, what string) string {
	return fmt.Sprintf("asked DOKU at %s: %s yet; it is concluded not received, and sent again, only after %s (doku.settle_time after the request)",
		asked.UTC().Format(time.RFC3339), what, until.UTC().Format(time.RFC3339))
}

func (e *Engine) now() time.Time {
	if e.NowFunc != nil {
		return e.NowFunc()
	}
	return time.Now()
}
