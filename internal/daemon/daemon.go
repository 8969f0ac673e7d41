// Package daemon runs the reconciler continuously (README.md, "The
// daemon"): it reconciles the configuration last applied, whose snapshot
// the state keeps, never unreviewed edits on disk; it fires each charge
// occurrence and not_before refund at its time, re-runs a full reconcile
// periodically to resolve pending results, and serves DOKU's
// notifications, health and metrics.
//
// The daemon is level-based: a timer, a notification or SIGHUP only says
// which addresses to look at; each cycle takes the state lock, plans those
// addresses from what the state and DOKU say, applies the plan and lets
// the lock go, so that an apply from CI waits at most one cycle. A lease
// with a heartbeat in the state lets one daemon run per state file.
package daemon

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// Defaults.
const (
	DefaultReconcileEvery = 5 * time.Minute
	DefaultLeaseTTL       = 30 * time.Second
	// DefaultShutdownTimeout outlasts the DOKU client's timeout (30 s),
	// so that a call in flight at SIGTERM ends and is recorded.
	DefaultShutdownTimeout = 40 * time.Second
	// DefaultMaxConns is how many connections DOKU's listener holds at
	// once: DOKU's notifications need a handful; a flood of idle or slow
	// connections waits in the backlog instead of holding memory.
	DefaultMaxConns = 256
	// maxAdminConns is how many scrapers the admin listener serves at
	// once; more wait their turn.
	maxAdminConns = 4
	// adminPace spaces the admin listener's connections: 50 a second
	// serve any number of scrapers; a flood of them waits in the
	// kernel's backlog instead of taking the CPU DOKU's notifications
	// need.
	adminPace = 20 * time.Millisecond
	// LeaseName is the lease a daemon holds on its state file.
	LeaseName = "daemon"
	// NotificationPath is where DOKU posts its notifications.
	NotificationPath = "/notifications/doku"
	// maxNotificationBody bounds a notification's body; DOKU's are well
	// under 4 KiB.
	maxNotificationBody = 64 << 10
	// appliedPoll is how often the daemon looks for a new apply, so that
	// it takes effect within seconds, not at the next full cycle.
	appliedPoll = 2 * time.Second
	// firstBackoff is the wait after an item's first failure; it doubles
	// per failure up to the reconcile period.
	firstBackoff = 5 * time.Second
	// inquiryDelay is the least wait before an outcome left unknown is
	// asked about again, when the engine has no settle time of its own
	// (reconcile.Engine.SettleTime, doku.settle_time).
	inquiryDelay = 60 * time.Second
)

// Store is what the daemon reads from and writes to the state, besides
// what the engine does.
type Store interface {
	AppliedSpec(ctx context.Context) (state.AppliedSpec, bool, error)
	AppliedSpecID(ctx context.Context) (int64, bool, error)
	RecordNotification(ctx context.Context, n state.Notification, now time.Time) (state.Recorded, error)
	PendingNotifications(ctx context.Context) ([]state.Notification, error)
	MarkNotificationProcessed(ctx context.Context, id int64, now time.Time) error
	AcquireLease(ctx context.Context, name string, me state.LeaseInfo, ttl time.Duration, now time.Time, dead func(state.LeaseInfo) bool) (state.LeaseInfo, error)
	RenewLease(ctx context.Context, name, id string, ttl time.Duration, now time.Time) error
	ReleaseLease(ctx context.Context, name, id string) error
	PendingEvents(ctx context.Context, now time.Time, limit int) ([]state.Event, error)
	MarkEventDelivered(ctx context.Context, id int64, now time.Time) error
	MarkEventFailed(ctx context.Context, id int64, errText string, next time.Time) error
	ExpireEvents(ctx context.Context, createdBefore time.Time) (int, error)
	PendingCounts(ctx context.Context) (map[string]int, error)
	StartRun(ctx context.Context, r state.Run) (int64, error)
	FinishRun(ctx context.Context, id int64, now time.Time, status string) error
	CheckUnchanged(ctx context.Context) error
}

// Parts are what SIGHUP rebuilds from the configuration on disk: how DOKU
// is reached and how its notifications are checked. The desired state
// always comes from the applied snapshot.
type Parts struct {
	Engine   *reconcile.Engine
	Receiver *doku.Receiver
	// LoadSpecFunc rebuilds the applied configuration from its snapshot
	// (spec.FromSnapshot with the doku block on disk).
	LoadSpecFunc func(snapshot []byte) (*spec.Config, error)
}

// Config is what New needs. Store, Parts, LockFunc and Listener are
// required.
type Config struct {
	Store Store
	Parts Parts
	// LockFunc takes the state lock for one cycle; unlock lets it go.
	LockFunc func(ctx context.Context) (unlock func(), err error)
	// Listener is where DOKU's endpoints are served (notifications, the
	// token DOKU asks for, /healthz): the public side. The caller opens it
	// so that it can print the address.
	Listener net.Listener
	// AdminListener, when set, serves /healthz, /readyz and /metrics: the
	// operator's side, kept off DOKU's listener (loopback by default in
	// ddctl daemon). Nil serves them nowhere.
	AdminListener net.Listener
	// MaxConns caps the connections the public listener holds at once
	// (default DefaultMaxConns); more wait in the kernel's backlog.
	MaxConns int
	// Holder names this daemon in its lease and runs.
	Holder state.LeaseInfo
	// Run is the template of the runs a cycle records (user, host, pid).
	Run state.Run

	ReconcileEvery  time.Duration // full reconcile period; default DefaultReconcileEvery, with ±10% jitter
	LeaseTTL        time.Duration // default DefaultLeaseTTL; renewed every third of it
	ShutdownTimeout time.Duration // default DefaultShutdownTimeout

	// EventURL, when set, receives every event, signed with EventSecret.
	EventURL    string
	EventSecret secret.Value
	EventClient *http.Client // default: 10 s timeout

	// NowFunc is the daemon's clock for plans, journals and notification
	// checks (default time.Now). Leases use the wall clock.
	NowFunc func() time.Time
	Logger  *slog.Logger
	// StartFunc, if set, is called once the lease is held and the
	// endpoints are served.
	StartFunc func()
	// CycleFunc, if set, is called after each cycle, for tests.
	CycleFunc func(CycleReport)
}

// CycleReport says what one cycle did.
type CycleReport struct {
	Trigger       string
	Targets       []string
	Notifications int // inbox entries processed
	Actions       int
	Succeeded     int
	Err           error
	Next          time.Time // when the next cycle is due
}

// Daemon is one running daemon. Its methods are safe for concurrent use.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	parts   atomic.Pointer[Parts]
	http    *http.Server // DOKU's side
	admin   *http.Server // the operator's side; nil without an AdminListener

	notified  chan struct{} // the inbox has something new
	refusals  rateLog       // refused notifications, logged at a rate
	tokenRate *bucket       // token requests on DOKU's listener
	reload    chan struct{} // SIGHUP
	delivered chan struct{} // events were recorded

	mu       sync.Mutex
	ready    string // why the daemon is not ready; "" when it is
	applied  int64  // ID of the applied snapshot in use
	cfgCache *spec.Config
	cfgParts *Parts         // the parts cfgCache was checked with
	loc      *time.Location // the applied configuration's zone, once loaded

	// stop ends Run with a cause (set by Run).
	stop context.CancelCauseFunc

	// Loop state, touched only by the loop goroutine.
	due      map[string]time.Time // targeted wakes, by address
	failures map[string]int       // consecutive failures, by address
	nextFull time.Time
}

// New checks cfg and returns a Daemon ready to Run.
func New(cfg Config) (*Daemon, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("daemon: no state store")
	case cfg.Parts.Engine == nil || cfg.Parts.Receiver == nil || cfg.Parts.LoadSpecFunc == nil:
		return nil, errors.New("daemon: engine, receiver and snapshot loader are all required")
	case cfg.LockFunc == nil:
		return nil, errors.New("daemon: no state lock")
	case cfg.Listener == nil:
		return nil, errors.New("daemon: no listener")
	case cfg.EventURL != "" && !eventURLAllowed(cfg.EventURL):
		return nil, fmt.Errorf("daemon: event URL %q: want https (http only to this machine: 127.0.0.1, [::1], localhost): each event carries customers' payment details and its signature", cfg.EventURL)
	case cfg.EventURL != "" && cfg.EventSecret.IsZero():
		return nil, errors.New("daemon: an event URL needs a secret to sign the events with")
	}
	cfg.ReconcileEvery = cmp.Or(cfg.ReconcileEvery, DefaultReconcileEvery)
	cfg.LeaseTTL = cmp.Or(cfg.LeaseTTL, DefaultLeaseTTL)
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	cfg.MaxConns = cmp.Or(cfg.MaxConns, DefaultMaxConns)
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	if cfg.Holder.ID == "" {
		cfg.Holder.ID = randomID()
	}
	if cfg.EventClient == nil {
		cfg.EventClient = &http.Client{Timeout: 10 * time.Second}
	}
	// An event goes to EventURL and nowhere else: a redirect would re-post
	// it, signature and all, to wherever the receiver (or whoever holds
	// its address) points. A 3xx is a failed delivery, retried.
	client := *cfg.EventClient
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.EventClient = &client
	d := &Daemon{
		cfg:       cfg,
		log:       cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		metrics:   newMetrics(cfg.Store),
		notified:  make(chan struct{}, 1),
		reload:    make(chan struct{}, 1),
		delivered: make(chan struct{}, 1),
		ready:     "starting",
		tokenRate: newBucket(tokenBurst, tokenEvery),
		due:       map[string]time.Time{},
		failures:  map[string]int{},
	}
	d.setParts(cfg.Parts)
	d.http = &http.Server{Handler: d.PublicHandler(),
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second, // the whole request, body included: at most 64 KiB
		WriteTimeout:      20 * time.Second, // recording a notification may wait for the state
		// A connection between requests holds one of MaxConns: DOKU
		// notifies now and then, and gains little from keeping it.
		IdleTimeout: 5 * time.Second,
		ErrorLog:    slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	if cfg.AdminListener != nil {
		d.admin = &http.Server{Handler: d.AdminHandler(), MaxHeaderBytes: maxHeaderBytes,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 20 * time.Second,
			ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
		// A connection a request: an idle scraper never holds one of the
		// few slots.
		d.admin.SetKeepAlivesEnabled(false)
	}
	return d, nil
}

// randomID names a lease holder that came without a name.
func randomID() string {
	b := make([]byte, 8)
	crand.Read(b)
	return hex.EncodeToString(b)
}

// setParts wraps the engine's DOKU so that every call is counted.
func (d *Daemon) setParts(p Parts) {
	e := *p.Engine
	if _, ok := e.DOKU.(countingDOKU); !ok {
		e.DOKU = countingDOKU{DOKU: e.DOKU, calls: d.metrics.apiCalls}
	}
	p.Engine = &e
	d.parts.Store(&p)
}

// Reload replaces how DOKU is reached (after SIGHUP) and starts a full
// cycle. The applied configuration is re-read by every cycle anyway.
func (d *Daemon) Reload(p Parts) {
	d.setParts(p) // the next cycle checks the snapshot against them
	poke(d.reload)
}

func (d *Daemon) now() time.Time { return d.cfg.NowFunc() }

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (d *Daemon) setReady(why string) {
	d.mu.Lock()
	d.ready = why
	d.mu.Unlock()
}

// ErrLeaseLost is returned by Run when another daemon took the state's
// lease: this one stopped so that two never act at once.
var ErrLeaseLost = errors.New("daemon: lost the state's lease to another daemon")

// Run holds the lease, serves HTTP and runs cycles until ctx is done, then
// stops: no new cycle or action starts, calls in flight finish and are
// recorded, and Run returns within ShutdownTimeout (what is cut short is
// journalled, and the next start resolves it). A second daemon on the same
// state gets the lease holder's *state.LeaseHeldError.
func (d *Daemon) Run(ctx context.Context) error {
	holder := d.cfg.Holder
	if _, err := d.cfg.Store.AcquireLease(ctx, LeaseName, holder, d.cfg.LeaseTTL, time.Now(), deadOnThisHost); err != nil {
		d.cfg.Listener.Close()
		if d.cfg.AdminListener != nil {
			d.cfg.AdminListener.Close()
		}
		return err
	}
	d.metrics.leaseHeld.Set(1)
	defer func() {
		d.metrics.leaseHeld.Set(0)
		if err := d.cfg.Store.ReleaseLease(context.WithoutCancel(ctx), LeaseName, holder.ID); err != nil {
			d.log.Warn("release the lease", "error", err)
		}
	}()
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	d.stop = cancel

	var wg sync.WaitGroup
	wg.Go(func() { d.heartbeat(runCtx, cancel) })
	serveErr := make(chan error, 2)
	go func() { serveErr <- d.http.Serve(limitListener(d.cfg.Listener, d.cfg.MaxConns, 0)) }()
	if d.admin != nil {
		go func() { serveErr <- d.admin.Serve(limitListener(d.cfg.AdminListener, maxAdminConns, adminPace)) }()
	}
	if d.cfg.EventURL != "" {
		wg.Go(func() { d.sendEvents(runCtx) })
	}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		d.loop(runCtx)
	}()
	if d.cfg.StartFunc != nil {
		d.cfg.StartFunc()
	}
	d.log.Info("daemon started", "listen", d.cfg.Listener.Addr().String(), "reconcile_every", d.cfg.ReconcileEvery.String())

	var err error
	select {
	case <-runCtx.Done():
	case err = <-serveErr:
		cancel(err)
	}
	d.log.Info("daemon stopping", "cause", context.Cause(runCtx))
	d.setReady("stopping")
	shut, cancelShut := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ShutdownTimeout)
	defer cancelShut()
	// Stop taking notifications (DOKU sends them again), alongside the
	// wait for the cycle: a slow upload must not eat the cycle's time.
	go d.http.Shutdown(shut)
	if d.admin != nil {
		go d.admin.Shutdown(shut)
	}
	select {
	case <-loopDone:
	case <-shut.Done():
		return errors.New("daemon: the cycle in progress did not finish within the shutdown timeout; what it sent is journalled and resolved at the next start")
	}
	wg.Wait()
	if errors.Is(context.Cause(runCtx), ErrLeaseLost) {
		return ErrLeaseLost
	}
	if cause := context.Cause(runCtx); errors.Is(cause, state.ErrStateReplaced) {
		return fmt.Errorf("daemon: %w; start it again: the state is then checked, and what it cannot vouch for is asked about at DOKU before anything is sent", cause)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("daemon: serve: %w", err)
	}
	return nil
}

// heartbeat renews the lease every third of its TTL; losing it stops the
// daemon.
func (d *Daemon) heartbeat(ctx context.Context, stop context.CancelCauseFunc) {
	t := time.NewTicker(d.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := d.cfg.Store.RenewLease(ctx, LeaseName, d.cfg.Holder.ID, d.cfg.LeaseTTL, time.Now())
		switch {
		case errors.Is(err, state.ErrLeaseLost):
			d.log.Error("another daemon took the lease; stopping", "error", err)
			stop(ErrLeaseLost)
			return
		case err != nil && ctx.Err() == nil:
			d.log.Warn("renew the lease", "error", err)
		}
	}
}

// deadOnThisHost reports whether a lease holder is a process of this host
// that no longer exists, so that a restart after kill -9 need not wait for
// the lease to expire.
func deadOnThisHost(l state.LeaseInfo) bool {
	host, err := os.Hostname()
	if err != nil || l.Host != host || l.PID <= 0 {
		return false
	}
	if errors.Is(syscall.Kill(l.PID, 0), syscall.ESRCH) {
		return true
	}
	// A killed process its parent has not reaped yet still answers
	// kill(pid, 0); /proc says it is a zombie.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(l.PID) + "/stat")
	if err != nil {
		return false
	}
	// The command name in parentheses may itself hold ") ".
	i := bytes.LastIndex(b, []byte(") "))
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// Triggers of a cycle.
const (
	triggerFull         = "full"
	triggerDue          = "due"
	triggerNotification = "notification"
	triggerReload       = "reload"
	triggerApplied      = "applied"
)

// loop runs cycles: a full one at start (catch_up and retry after
// downtime), then whenever a targeted address falls due, a notification
// arrives, SIGHUP comes or the reconcile period elapses.
func (d *Daemon) loop(ctx context.Context) {
	seen, _, _ := d.cfg.Store.AppliedSpecID(ctx) // the first cycle loads it
	d.runCycle(ctx, triggerFull, nil)
	timer := time.NewTimer(0)
	defer timer.Stop()
	poll := time.NewTicker(appliedPoll)
	defer poll.Stop()
	for ctx.Err() == nil {
		wake := d.nextWake()
		timer.Reset(max(wake.Sub(d.now()), 0))
		select {
		case <-ctx.Done():
			return
		case <-d.reload:
			d.runCycle(ctx, triggerReload, nil)
		case <-poll.C:
			// A new apply: a full cycle on the new configuration now. Once
			// per snapshot, even if that cycle fails (it says why, and the
			// periodic cycle tries again).
			id, ok, err := d.cfg.Store.AppliedSpecID(ctx)
			if err == nil && ok && id != seen {
				seen = id
				d.runCycle(ctx, triggerApplied, nil)
			}
		case <-d.notified:
			d.runCycle(ctx, triggerNotification, []string{})
		case <-timer.C:
			now := d.now()
			if !now.Before(d.nextFull) {
				d.runCycle(ctx, triggerFull, nil)
				continue
			}
			var targets []string
			for addr, at := range d.due {
				if !now.Before(at) {
					targets = append(targets, addr)
				}
			}
			if len(targets) > 0 {
				sort.Strings(targets)
				d.runCycle(ctx, triggerDue, targets)
			}
		}
	}
}

// nextWake is the earliest of the next full cycle and the targeted wakes.
func (d *Daemon) nextWake() time.Time {
	next := d.nextFull
	for _, at := range d.due {
		if at.Before(next) {
			next = at
		}
	}
	return next
}

// runCycle runs one cycle and records it. targets nil is a full cycle;
// empty (not nil) processes the inbox and plans only what it touched.
func (d *Daemon) runCycle(ctx context.Context, trigger string, targets []string) {
	start := time.Now()
	rep := d.cycle(ctx, trigger, targets)
	for _, t := range targets {
		if at, ok := d.due[t]; ok && !at.After(d.now()) {
			delete(d.due, t) // spelled otherwise than the plan's address
		}
	}
	if rep.Err != nil {
		// Whatever this cycle was to look at is looked at again later,
		// not at once: a due time already past would wake the loop in a
		// spin.
		now := d.now()
		for _, t := range targets {
			d.backoff(t, now)
		}
	}
	rep.Trigger, rep.Next = trigger, d.nextWake()
	result := "success"
	switch {
	case errors.Is(rep.Err, errLocked), errors.Is(rep.Err, errNoConfig):
		result = "skipped"
	case rep.Err != nil:
		result = "error"
	}
	d.metrics.runs.WithLabelValues(trigger, result).Inc()
	d.metrics.duration.WithLabelValues(trigger).Observe(time.Since(start).Seconds())
	if result == "success" {
		d.metrics.lastSuccess.SetToCurrentTime()
	}
	log := d.log.With("trigger", trigger, "targets", len(rep.Targets), "notifications", rep.Notifications,
		"actions", rep.Actions, "succeeded", rep.Succeeded, "next", rep.Next.UTC().Format(time.RFC3339))
	switch {
	case rep.Err != nil && ctx.Err() == nil:
		log.Warn("cycle ended early", "error", rep.Err)
	case rep.Actions > 0 || rep.Notifications > 0:
		log.Info("cycle")
	default:
		log.Debug("cycle")
	}
	poke(d.delivered)
	if d.cfg.CycleFunc != nil {
		d.cfg.CycleFunc(rep)
	}
}

var (
	errLocked   = errors.New("the state is locked by another run")
	errNoConfig = errors.New("no configuration has been applied to this state yet: run ddctl apply")
)

func (d *Daemon) cycle(ctx context.Context, trigger string, targets []string) (rep CycleReport) {
	full := targets == nil
	if full {
		d.nextFull = d.now().Add(jitter(d.cfg.ReconcileEvery, 0.1))
	}
	unlock, err := d.cfg.LockFunc(ctx)
	if err != nil {
		// Try again soon rather than a whole period later; a full cycle
		// also takes in the inbox a notification cycle could not.
		if soon := d.now().Add(jitter(firstBackoff, 0.2)); soon.Before(d.nextFull) {
			d.nextFull = soon
		}
		var le *state.LockedError
		if errors.As(err, &le) {
			err = fmt.Errorf("%w: %v", errLocked, err)
		}
		rep.Err = err
		return rep
	}
	defer unlock()
	// A state replaced or restored under this daemon (cp over the file)
	// must not be written as if it were the one it opened: it stops.
	if err := d.cfg.Store.CheckUnchanged(ctx); err != nil {
		d.log.Error("the state changed under the daemon; stopping", "error", err)
		if d.stop != nil && errors.Is(err, state.ErrStateReplaced) {
			d.stop(err)
		}
		rep.Err = err
		return rep
	}
	parts := d.parts.Load()

	cfg, changed, err := d.appliedConfig(ctx, parts)
	if err != nil {
		d.setReady(err.Error())
		rep.Err = err
		return rep
	}
	if changed {
		// Wakes of the old configuration are recomputed by a full cycle.
		clear(d.due)
		if !full {
			d.nextFull = d.now()
		}
	}
	touched, n, err := d.processInbox(ctx, parts, cfg)
	rep.Notifications = n
	if err != nil {
		// The rest of the inbox waits for the next cycle; planning must
		// not (charges and refunds are due whatever the inbox holds).
		d.log.Warn("notification inbox: stopped at an entry that failed; trying again next cycle", "error", err)
	}
	if cfg == nil {
		rep.Err = errNoConfig
		return rep
	}
	if full && d.cfg.EventURL == "" {
		// Nobody receives events: keep them as a record, not as a queue.
		if _, err := d.cfg.Store.ExpireEvents(ctx, d.now().Add(-eventMaxAge)); err != nil {
			d.log.Warn("expire old events", "error", err)
		}
	}
	if targets != nil {
		targets = append(targets, touched...)
		if len(targets) == 0 {
			return rep
		}
	}
	tg := d.validTargets(cfg, targets)
	if targets != nil && len(tg) == 0 {
		return rep
	}
	rep.Targets = tg

	if r, ok := parts.Engine.DOKU.(interface {
		NewRun(context.Context) context.Context
	}); ok {
		// One cycle is one run: its waits for DOKU's "retry later"
		// answers share one budget (doku.retry_budget).
		ctx = r.NewRun(ctx)
	}
	now := d.now()
	p, err := parts.Engine.Plan(ctx, cfg, reconcile.PlanOptions{At: now, Targets: tg})
	if err != nil {
		rep.Err = fmt.Errorf("plan: %w", err)
		return rep
	}
	var res *reconcile.ApplyResult
	switch {
	case len(p.OverLimit) > 0:
		// The daemon never goes over settings.limits: only an apply given
		// a reason does. Nothing of this plan is sent or recorded.
		for _, l := range p.OverLimit {
			d.log.Error("plan over settings.limits: nothing sent", "limit", l.Limit, "max", l.Max.String(), "total", l.Total.String(), "instances", len(l.Instances), "detail", l.Error())
		}
	case !p.HasChanges():
		// A deferred charge spends an attempt (retry decides when it
		// comes again).
		if _, err := parts.Engine.Apply(ctx, p, 0, nil); err != nil {
			rep.Err = err
			return rep
		}
	default:
		run := d.cfg.Run
		run.Command, run.StartedAt, run.SpecDigest = "daemon", time.Now(), cfg.Digest
		id, err := d.cfg.Store.StartRun(ctx, run)
		if err != nil {
			rep.Err = fmt.Errorf("record run: %w", err)
			return rep
		}
		res, err = parts.Engine.Apply(ctx, p, id, func(r reconcile.ActionResult) {
			d.metrics.actions.WithLabelValues(string(r.Action.Kind), string(r.Status)).Inc()
		})
		if err != nil {
			d.log.Error("apply", "error", err)
			if ferr := d.cfg.Store.FinishRun(context.WithoutCancel(ctx), id, time.Now(), "failed"); ferr != nil {
				d.log.Warn("record end of run", "error", ferr)
			}
			rep.Err = err
			return rep
		}
		status := "succeeded"
		rep.Actions, rep.Succeeded = len(res.Results), res.Count(reconcile.ResultSucceeded)
		if rep.Succeeded != rep.Actions {
			status = "failed"
		}
		if err := d.cfg.Store.FinishRun(context.WithoutCancel(ctx), id, time.Now(), status); err != nil {
			d.log.Warn("record end of run", "error", err)
		}
		for _, r := range res.Results {
			if r.Status != reconcile.ResultSucceeded {
				d.log.Warn("action", "address", r.Action.Address, "kind", r.Action.Kind, "status", r.Status, "snap_code", r.Code, "message", r.Message)
			} else {
				d.log.Info("action", "address", r.Action.Address, "kind", r.Action.Kind, "status", r.Status)
			}
		}
	}
	for _, e := range p.Errors {
		d.log.Warn("needs attention", "address", e.Address, "summary", e.Summary, "snap_code", e.Code, "detail", e.Detail)
	}
	d.schedule(cfg, p, res, tg, now, cmp.Or(parts.Engine.SettleTime, inquiryDelay))
	d.setReady("")
	return rep
}

// validTargets keeps the targets the applied configuration still has: a
// wake scheduled before a new apply may name what it removed.
func (d *Daemon) validTargets(cfg *spec.Config, targets []string) reconcile.Targets {
	if targets == nil {
		return nil
	}
	var out reconcile.Targets
	seen := map[string]bool{}
	for _, t := range targets {
		if seen[t] {
			continue
		}
		seen[t] = true
		tg, err := reconcile.ParseTargets(cfg, []string{t})
		if err != nil {
			delete(d.due, t)
			delete(d.failures, t)
			continue
		}
		out = append(out, tg...)
	}
	return out
}

// appliedConfig is the configuration last applied, rebuilt from its
// snapshot when a new one was applied (changed). It is nil, with no
// error, before anything was applied.
func (d *Daemon) appliedConfig(ctx context.Context, parts *Parts) (cfg *spec.Config, changed bool, err error) {
	latest, ok, err := d.cfg.Store.AppliedSpecID(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("read the applied configuration: %w", err)
	}
	if !ok {
		d.setReady(errNoConfig.Error())
		return nil, false, nil
	}
	d.mu.Lock()
	cached, id, from := d.cfgCache, d.applied, d.cfgParts
	d.mu.Unlock()
	// Rebuilt for a new snapshot, and for new parts (SIGHUP): the
	// snapshot is checked against the doku block it runs with.
	if cached != nil && id == latest && from == parts {
		return cached, false, nil
	}
	a, ok, err := d.cfg.Store.AppliedSpec(ctx)
	if err != nil || !ok {
		return nil, false, fmt.Errorf("read the applied configuration: %v", cmp.Or(err, errors.New("gone")))
	}
	cfg, err = parts.LoadSpecFunc(a.Body)
	if err != nil {
		return nil, false, fmt.Errorf("the configuration applied at %s (run %d): %w", a.AppliedAt.Format(time.RFC3339), a.RunID, err)
	}
	d.mu.Lock()
	d.cfgCache, d.applied, d.cfgParts, d.loc = cfg, a.ID, parts, cfg.Settings.Location
	d.mu.Unlock()
	d.log.Info("reconciling the applied configuration", "spec_digest", cfg.Digest, "applied_at", a.AppliedAt.Format(time.RFC3339), "run_id", a.RunID,
		"refunds", len(cfg.Refunds), "charges", len(cfg.Charges), "bindings", len(cfg.Bindings), "unbinds", len(cfg.Unbinds))
	return cfg, true, nil
}

// processInbox applies the notifications not yet processed, oldest first,
// and returns the addresses they touched: each occurrence whose attempt
// changed, and the refunds of it, for a plan to look at now.
func (d *Daemon) processInbox(ctx context.Context, parts *Parts, cfg *spec.Config) (touched []string, n int, err error) {
	pending, err := d.cfg.Store.PendingNotifications(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("read the notification inbox: %w", err)
	}
	for _, in := range pending {
		if ctx.Err() != nil {
			return touched, n, ctx.Err()
		}
		note, perr := doku.ParseNotification(in.Body)
		if perr == nil {
			note.ExternalID, note.Signed = in.ExternalID, in.Signed
			out, err := parts.Engine.ApplyNotification(ctx, note)
			if err != nil {
				return touched, n, err
			}
			log := d.log.With("partner_reference_no", note.OriginalPartnerReferenceNo, "status", note.LatestTransactionStatus)
			if out.Conflict {
				d.metrics.conflicts.Inc()
				log.Error("DOKU reports paid an attempt the state had as not paid; recorded as paid. A later attempt may have been charged too: check the occurrence's attempts",
					"charge", out.Charge.Address, "occurrence", out.Charge.Occurrence.Format(time.RFC3339), "attempt", out.Charge.Attempt)
			}
			if out.Changed {
				log.Info("notification applied", "charge", out.Charge.Address, "charge_status", out.Charge.Status)
				if cfg != nil {
					touched = append(touched, occurrenceTargets(cfg, out.Charge)...)
				}
			} else {
				log.Debug("notification changed nothing", "reason", out.Reason)
			}
		} else {
			// Verified on receipt, so this cannot happen unless the parser
			// changed between versions; keep it for the record.
			d.log.Warn("notification in the inbox does not parse; skipped", "id", in.ID, "error", perr)
		}
		if err := d.cfg.Store.MarkNotificationProcessed(ctx, in.ID, d.now()); err != nil {
			return touched, n, err
		}
		n++
	}
	return touched, n, nil
}

// occurrenceTargets are the occurrence of a charge attempt and the refunds
// of that occurrence.
func occurrenceTargets(cfg *spec.Config, c state.Charge) []string {
	loc := cfg.Settings.Location
	out := []string{spec.OccurrenceAddress(c.Address, c.Occurrence, loc)}
	for _, r := range cfg.Refunds {
		if r.Charge == c.Address && r.Occurrence.Equal(c.Occurrence) {
			out = append(out, r.Address)
		}
	}
	return out
}

// schedule records when each planned address is next due: a charge's next
// occurrence, what the plan says waits until a time, and a backoff for
// what failed for now (per item, doubling, capped at the reconcile
// period).
func (d *Daemon) schedule(cfg *spec.Config, p *reconcile.Plan, res *reconcile.ApplyResult, tg reconcile.Targets, now time.Time, settle time.Duration) {
	for addr := range d.due {
		if tg.Match(addr) {
			delete(d.due, addr)
		}
	}
	loc := cfg.Settings.Location
	for _, c := range cfg.Charges {
		// Strictly after now: an occurrence at now was just planned; one a
		// moment later (a timer that fired early) is still to come.
		if at, ok := c.NextOccurrence(now.Add(time.Nanosecond), loc); ok {
			d.due[spec.OccurrenceAddress(c.Address, at, loc)] = at
		}
	}
	for _, w := range p.Waiting {
		if w.Until.After(now) {
			d.due[w.Address] = w.Until
		}
	}
	failed := map[string]bool{}
	unsettled := map[string]bool{} // outcome unknown: asked about again after the settle time
	for _, u := range p.Unresolved {
		failed[u.Address], unsettled[u.Address] = true, true
	}
	for _, e := range p.Errors {
		if e.Transient {
			failed[e.Address] = true
		}
	}
	if res != nil {
		for _, r := range res.Results {
			switch r.Status {
			case reconcile.ResultSucceeded, reconcile.ResultFailed:
			case reconcile.ResultUnknown:
				failed[r.Action.Address], unsettled[r.Action.Address] = true, true
			default:
				failed[r.Action.Address] = true
			}
		}
	}
	for addr := range d.failures {
		if tg.Match(addr) && !failed[addr] {
			delete(d.failures, addr)
		}
	}
	for addr := range failed {
		d.backoff(addr, now)
		if unsettled[addr] {
			// DOKU: no status inquiry sooner than 60 s after
			// the request, or "not found" may only mean "not yet";
			// the engine concludes nothing before the settle time.
			if least := now.Add(jitter(settle, 0.1) + settle/10); d.due[addr].Before(least) {
				d.due[addr] = least
			}
		}
	}
}

// backoff counts a failure of addr and schedules it again: 5 s after the
// first, doubling per failure, at most the reconcile period, jittered.
func (d *Daemon) backoff(addr string, now time.Time) {
	d.failures[addr]++
	wait := firstBackoff << min(d.failures[addr]-1, 16)
	d.due[addr] = now.Add(jitter(min(wait, d.cfg.ReconcileEvery), 0.2))
}

// jitter returns d moved randomly by up to ±frac of it, so that daemons
// and items that failed together do not retry together.
func jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 + frac*(2*rand.Float64()-1)))
}
