package doku

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Defaults of the retries within a run.
const (
	// DefaultRetryBudget is how long one run (a plan and its apply, or
	// one daemon cycle) may be held up in all by waits for "retry later"
	// answers before it leaves what is still refused to the next run.
	DefaultRetryBudget = 30 * time.Second
	// DefaultRetryWaitMax is the longest single wait: a Retry-After above
	// it is waited for only this long.
	DefaultRetryWaitMax = 5 * time.Second
)

// RetryBudget is what one run may wait for "retry later" answers, shared
// by all its calls, however many are made at once. What it counts is the
// time at least one call was waiting, so that calls waiting together (a
// plan's inquiries in parallel) spend it once, and calls waiting one after
// another add up: however many "retry later" answers a run meets, the
// waits make it at most the budget longer. It is safe for concurrent use.
type RetryBudget struct {
	total time.Duration

	mu      sync.Mutex
	used    time.Duration // waited, in intervals that have ended
	waiting int           // calls waiting now
	since   time.Time     // since when at least one call waits
}

// NewRetryBudget returns a budget of total; total <= 0 allows no wait.
func NewRetryBudget(total time.Duration) *RetryBudget {
	return &RetryBudget{total: max(total, 0)}
}

// Used is how long the run was held up by waits so far.
func (b *RetryBudget) Used() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent(time.Now())
}

func (b *RetryBudget) spent(now time.Time) time.Duration {
	if b.waiting > 0 {
		return b.used + now.Sub(b.since)
	}
	return b.used
}

// start begins a wait of d if the budget has room for it, and returns the
// function that ends it.
func (b *RetryBudget) start(d time.Duration) (done func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.spent(now)+d > b.total {
		return nil, false
	}
	if b.waiting == 0 {
		b.since = now
	}
	b.waiting++
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.waiting--; b.waiting == 0 {
			b.used += time.Since(b.since)
		}
	}, true
}

type retryBudgetKey struct{}

// WithRetryBudget returns ctx carrying b: the calls made with it share b,
// instead of the budget of their Client. A daemon starts each cycle so.
func WithRetryBudget(ctx context.Context, b *RetryBudget) context.Context {
	return context.WithValue(ctx, retryBudgetKey{}, b)
}

// NewRun returns ctx carrying a fresh budget of the client's size
// (Config.RetryBudget): the calls made with it are one run. Without it,
// the calls share the budget the client was made with, which suits a
// process that is one run (ddctl plan, ddctl apply).
func (c *Client) NewRun(ctx context.Context) context.Context {
	return WithRetryBudget(ctx, NewRetryBudget(c.budgetSize()))
}

func (c *Client) budgetSize() time.Duration {
	if c.cfg.RetryBudget < 0 {
		return 0
	}
	return cmp.Or(c.cfg.RetryBudget, DefaultRetryBudget)
}

func (c *Client) budget(ctx context.Context) *RetryBudget {
	if b, ok := ctx.Value(retryBudgetKey{}).(*RetryBudget); ok && b != nil {
		return b
	}
	return c.runBudget
}

// sleep waits d, or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryWait says whether a call's error is an answer to send again within
// the run, and after how long. Only an answer that says DOKU did not
// process the request (RetryLater) and that asks to come back later
// qualifies: a 429, or any such answer with Retry-After. Never a transport
// failure, a 5xx or a dropped answer: a mutating call may have taken effect
// then, and is asked about before anything is sent again. Nor the other
// RetryLater answers (a refused token, an activity limit, a cut-off time):
// seconds do not change them. The wait is Retry-After, or with none a
// backoff of 0.5 s doubling per attempt, with ±20% jitter, at most max. A
// Retry-After beyond max is no retry within the run: sending sooner than
// DOKU asked would only meet another 429.
func retryWait(err error, attempt int, max time.Duration) (time.Duration, bool) {
	var e *Error
	if !errors.As(err, &e) || e.Outcome != RetryLater || e.HTTPStatus == 0 ||
		(e.HTTPStatus != http.StatusTooManyRequests && e.RetryAfter == 0) || e.RetryAfter > max {
		return 0, false
	}
	wait := e.RetryAfter
	if wait == 0 {
		wait = 500 * time.Millisecond << min(attempt, 4)
		wait += time.Duration((rand.Float64()*0.4 - 0.2) * float64(wait))
	}
	return min(wait, max), true
}
