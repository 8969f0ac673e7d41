package reconcile

import (
	"context"
	"net/http/httptrace"
	"strings"
	"sync/atomic"

	"github.com/ddctl/ddctl/internal/state"
)

// CrashPoint names a moment on the apply path of one action, where a crash
// test aborts the process (Engine.CrashFunc). Whatever the moment, the
// next run must converge with nothing doubled and nothing lost (principle
// 2, docs/principles.md). Its value is its name.
type CrashPoint string

// Crash points, in the order an action passes them.
const (
	// CrashBeforeIntent: the request is built; nothing is recorded and
	// nothing sent.
	CrashBeforeIntent CrashPoint = "before-intent"
	// CrashMidIntent (charge only): the operation is journalled as intent,
	// the charge's own row not yet written (two transactions).
	CrashMidIntent CrashPoint = "mid-intent"
	// CrashAfterIntent: the intent is committed; not a byte is sent.
	CrashAfterIntent CrashPoint = "after-intent"
	// CrashAfterSend: the request has left (DOKU began to answer it); not a
	// byte of the answer is read.
	CrashAfterSend CrashPoint = "after-send"
	// CrashAfterResponse: the answer is read (or the call failed); nothing
	// of it is recorded.
	CrashAfterResponse CrashPoint = "after-response"
	// CrashBeforeOutcome: just before the first write of the outcome.
	CrashBeforeOutcome CrashPoint = "before-outcome"
	// CrashMidOutcome (charge, bind, unbind): the entry's own row (charge,
	// binding) is written, the journal's outcome not yet (two
	// transactions; a refund's outcome is one).
	CrashMidOutcome CrashPoint = "mid-outcome"
	// CrashAfterOutcome: the outcome is committed.
	CrashAfterOutcome CrashPoint = "after-outcome"
)

func (p CrashPoint) String() string { return string(p) }

// CrashPoints lists, in order, the points an action of kind passes; nil
// for an unknown kind.
func CrashPoints(kind ActionKind) []CrashPoint {
	switch kind {
	case ActionCharge:
		return []CrashPoint{CrashBeforeIntent, CrashMidIntent, CrashAfterIntent, CrashAfterSend, CrashAfterResponse,
			CrashBeforeOutcome, CrashMidOutcome, CrashAfterOutcome}
	case ActionRefund:
		return []CrashPoint{CrashBeforeIntent, CrashAfterIntent, CrashAfterSend, CrashAfterResponse,
			CrashBeforeOutcome, CrashAfterOutcome}
	case ActionBind, ActionUnbind:
		return []CrashPoint{CrashBeforeIntent, CrashAfterIntent, CrashAfterSend, CrashAfterResponse,
			CrashBeforeOutcome, CrashMidOutcome, CrashAfterOutcome}
	}
	return nil
}

// crash reports point p of action a to CrashFunc, if set.
func (e *Engine) crash(p CrashPoint, a Action) {
	if e.CrashFunc != nil {
		e.CrashFunc(p, a.Kind, a.Address)
	}
}

// sendContext is ctx for the request of action a, whose X-EXTERNAL-ID is
// extID: with CrashFunc set, it reports CrashAfterSend once that request
// has left, so that the DOKU client needs no hook of its own.
//
// The request is told from the token requests the client may make first
// with the same context by its X-EXTERNAL-ID header (WroteHeaderField). Its
// WroteRequest is not the moment itself: net/http calls it when the
// request is complete in the transport's write buffer, which is flushed
// only after the hook returns (transport.go, persistConn.writeLoop). The
// first byte of the answer proves the request left; the point is reported
// then (GotFirstResponseByte), before the transport parses a byte of the
// answer. A request that gets no answer at all does not pass the point.
func (e *Engine) sendContext(ctx context.Context, a Action, extID string) context.Context {
	if e.CrashFunc == nil {
		return ctx
	}
	var ours, written atomic.Bool
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaderField: func(key string, value []string) {
			if strings.EqualFold(key, "X-External-Id") && len(value) == 1 && value[0] == extID {
				ours.Store(true)
			}
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if ours.Swap(false) && info.Err == nil {
				written.Store(true)
			}
		},
		GotFirstResponseByte: func() {
			if written.Swap(false) {
				e.crash(CrashAfterSend, a)
			}
		},
	})
}

// closeJournal ends an action whose row (charge or binding) is already
// written: the journal's outcome goes second, so that a crash between the
// two (CrashMidOutcome) leaves the operation open for the resolver.
func (e *Engine) closeJournal(ctx context.Context, a Action, opID int64, o state.Outcome, err error, out ActionResult) ActionResult {
	e.crash(CrashMidOutcome, a)
	out.Code, out.Message = o.SNAPCode, cmpMessage(o.Message, err)
	if rerr := e.Store.RecordOutcome(context.WithoutCancel(ctx), opID, o, e.now()); rerr != nil {
		out.Message += "; recording the outcome failed: " + rerr.Error()
	}
	e.crash(CrashAfterOutcome, a)
	return out
}
