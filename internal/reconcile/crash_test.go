package reconcile_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// Each crash point is reported where it is named: the intent committed
// and nothing sent at after-intent, the request counted by DOKU and
// nothing recorded at after-send, and so on, in the order CrashPoints
// lists, once per action. The apply runs with a new DOKU client, so that
// the B2B (and customer) token requests go first under the same context:
// after-send must not fire for them.
func TestCrashPointPlacement(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		kind reconcile.ActionKind
		op   doku.Op
		// prepare returns the configuration whose plan has one action of
		// the kind.
		prepare func(t *testing.T, b *bundle) *spec.Config
		// recorded reports whether the entry's own row shows the outcome.
		recorded func(t *testing.T, b *bundle) bool
	}{{
		kind: reconcile.ActionRefund, op: doku.OpRefund,
		prepare: func(t *testing.T, b *bundle) *spec.Config {
			b.sb.Pay(t, "INV-1", 5000000)
			return config(refund("a", "INV-1", 0))
		},
		recorded: func(t *testing.T, b *bundle) bool {
			r, _, err := b.store.Refund(ctx, "refund.a")
			if err != nil {
				t.Error(err)
			}
			return r.Status == state.RefundSucceeded
		},
	}, {
		kind: reconcile.ActionCharge, op: doku.OpPayment,
		prepare: func(t *testing.T, b *bundle) *spec.Config {
			cfg := config()
			b.activeBinding(t, cfg)
			cfg.Charges = gymCharge(1)
			return cfg
		},
		recorded: func(t *testing.T, b *bundle) bool {
			rows, err := b.store.Charges(ctx)
			if err != nil {
				t.Error(err)
			}
			return len(rows) == 1 && rows[0].Status == state.ChargeAwaitingCustomer
		},
	}, {
		kind: reconcile.ActionBind, op: doku.OpBinding,
		prepare: func(t *testing.T, b *bundle) *spec.Config {
			raw, _ := json.Marshal("1000000")
			if _, err := b.sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: "6281234567890", Balance: raw}); err != nil {
				t.Fatal(err)
			}
			cfg := config()
			cfg.Bindings = []spec.Binding{{Address: "binding.alice", Name: "alice", CustomerID: "cust-1", Phone: "6281234567890",
				SuccessURL: "https://x.test/ok", FailedURL: "https://x.test/fail", DeviceModel: "ddctl", OSType: "android", ChannelID: "web"}}
			return cfg
		},
		recorded: func(t *testing.T, b *bundle) bool {
			have, _, err := b.store.Binding(ctx, "binding.alice")
			if err != nil {
				t.Error(err)
			}
			return have.Status == state.BindingPending
		},
	}, {
		kind: reconcile.ActionUnbind, op: doku.OpUnbinding,
		prepare: func(t *testing.T, b *bundle) *spec.Config {
			cfg := config()
			b.activeBinding(t, cfg)
			b.plan(t, cfg) // sees it active
			cfg.Bindings = nil
			cfg.Unbinds = []spec.Unbind{{Address: "unbind.alice_left", Name: "alice_left", CustomerID: "cust-1"}}
			return cfg
		},
		recorded: func(t *testing.T, b *bundle) bool {
			have, _, err := b.store.Binding(ctx, "binding.alice")
			if err != nil {
				t.Error(err)
			}
			return have.Status == state.BindingUnbound
		},
	}} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			b := setup(t)
			cfg := tc.prepare(t, b)
			p := b.plan(t, cfg)
			if len(p.Actions) != 1 || p.Actions[0].Kind != tc.kind {
				t.Fatalf("plan: %+v, want one %s", p.Actions, tc.kind)
			}
			addr := p.Actions[0].Address
			b.engine.DOKU = b.sb.Client(t) // no token yet
			sentBefore := b.sb.Calls(tc.op)
			var mu sync.Mutex
			var seen []reconcile.CrashPoint
			b.engine.CrashFunc = func(point reconcile.CrashPoint, kind reconcile.ActionKind, address string) {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, point)
				if kind != tc.kind || address != addr {
					t.Errorf("%s reported for %s %s, want %s %s", point, kind, address, tc.kind, addr)
				}
				ops, err := b.store.Operations(ctx, addr)
				if err != nil {
					t.Error(err)
					return
				}
				var status state.OpStatus
				if len(ops) > 0 {
					status = ops[len(ops)-1].Status
				}
				sent := b.sb.Calls(tc.op) - sentBefore
				recorded := tc.recorded(t, b)
				var want string
				switch point {
				case reconcile.CrashBeforeIntent:
					if len(ops) != 0 || sent != 0 {
						want = "no operation journalled, nothing sent"
					}
				case reconcile.CrashMidIntent, reconcile.CrashAfterIntent:
					if status != state.OpIntent || sent != 0 || recorded {
						want = "the intent committed, nothing sent"
					}
				case reconcile.CrashAfterSend, reconcile.CrashAfterResponse, reconcile.CrashBeforeOutcome:
					if status != state.OpIntent || sent != 1 || recorded {
						want = "the request received by DOKU, the operation still intent, no outcome recorded"
					}
				case reconcile.CrashMidOutcome:
					if status != state.OpIntent || sent != 1 || !recorded {
						want = "the entry's row recorded, the operation still intent"
					}
				case reconcile.CrashAfterOutcome:
					if status != state.OpSucceeded || sent != 1 || !recorded {
						want = "the outcome committed"
					}
				default:
					want = "no such point"
				}
				if want != "" {
					t.Errorf("at %s: %d operations (last %q), %d %s requests at DOKU, outcome recorded %v; want %s",
						point, len(ops), status, sent, tc.op, recorded, want)
				}
			}
			res := b.apply(t, p)
			if res.Count(reconcile.ResultSucceeded) != 1 {
				t.Fatalf("apply: %+v", res.Results)
			}
			if want := reconcile.CrashPoints(tc.kind); !slices.Equal(seen, want) {
				t.Fatalf("points reported %v, want %v", seen, want)
			}
		})
	}
}

// Every kind passes the six points every crash test enumerates; an
// unknown kind passes none.
func TestCrashPointsKnown(t *testing.T) {
	for _, kind := range []reconcile.ActionKind{reconcile.ActionCharge, reconcile.ActionRefund, reconcile.ActionBind, reconcile.ActionUnbind} {
		points := reconcile.CrashPoints(kind)
		for _, p := range []reconcile.CrashPoint{reconcile.CrashBeforeIntent, reconcile.CrashAfterIntent, reconcile.CrashAfterSend,
			reconcile.CrashAfterResponse, reconcile.CrashBeforeOutcome, reconcile.CrashAfterOutcome} {
			if !slices.Contains(points, p) {
				t.Errorf("CrashPoints(%s) = %v, lacks %s", kind, points, p)
			}
		}
	}
	if got := reconcile.CrashPoints("teleport"); got != nil {
		t.Errorf("CrashPoints(teleport) = %v, want nil", got)
	}
}
