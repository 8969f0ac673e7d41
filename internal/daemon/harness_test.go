package daemon

import (
	"bufio"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// The daemon is tested in-process, wired as cmd/ddctl/daemon.go wires it:
// a real sandbox over HTTP, a real state file, a real doku.Client and
// Receiver, the applied configuration stored as ddctl apply stores it, and
// Run on a real listener. It is observed through CycleFunc (a test
// signal) and its HTTP endpoints, never through sleeps.

// waitFor bounds every wait on a test signal: generous, since a failing
// test should say what it waited for rather than hang.
const waitFor = 20 * time.Second

// Configuration blocks the tests combine. The charge's first occurrence is
// 2026-12-01 09:00 in Jakarta (the default time zone).
const (
	bindingHCL = `
binding "alice" {
  customer_id = "cust-001"
  phone       = "6281234567890"
  success_url = "https://shop.example/pay/ok"
  failed_url  = "https://shop.example/pay/failed"
}
`
	// payerHCL is the binding the sandbox's payments (Pay) were made
	// through, bound outside ddctl and adopted in every env's state: a
	// refund of those payments names it.
	payerHCL = `
binding "payer" {
  customer_id = "` + sandboxtest.PayerCustomerID + `"
  phone       = "` + sandboxtest.PayerPhone + `"
  success_url = "https://shop.example/pay/ok"
  failed_url  = "https://shop.example/pay/failed"
}
`
	gymHCL = `
recurring_charge "gym" {
  binding     = binding.alice
  amount      = 150000
  schedule    = "0 9 * * *"
  start       = "2026-12-01"
  description = "Gym"
}
`
	alicePhone = "6281234567890"
	gymAmount  = money.Amount(15000000)
)

var (
	jakarta, _ = time.LoadLocation("Asia/Jakarta")
	// gymFirst is the gym charge's first occurrence.
	gymFirst = time.Date(2026, 12, 1, 9, 0, 0, 0, jakarta)
	// gymOccurrence is its address.
	gymOccurrence = "recurring_charge.gym#2026-12-01T09:00+07:00"
)

// clock is a wall clock moved by an offset the test sets, shared by the
// daemon, the engine, the DOKU client, the receiver and the sandbox.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func newClock(at time.Time) *clock {
	if at.IsZero() {
		return &clock{}
	}
	return &clock{offset: time.Until(at)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Set moves the clock to t, from where it runs on.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.offset = time.Until(t)
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// envOptions say what an env holds.
type envOptions struct {
	hcl     string    // the configuration besides the doku block
	at      time.Time // where the clock starts; zero is now
	noApply bool      // store no applied configuration
	// notify makes the sandbox send its notifications to the daemon, as
	// DOKU does: the env then opens the first daemon's listener itself.
	notify  bool
	sandbox func(*sandbox.Config)
}

// env is what the daemons of one test share: the sandbox (DOKU), the
// state file, the configuration and the clock.
type env struct {
	tb    testing.TB
	clock *clock
	sb    *sandboxtest.Env
	dir   string // the configuration directory
	cfg   *spec.Config
	path  string // the state file
	store *state.Store
	// engine is for setting the state up as ddctl apply would, before a
	// daemon runs.
	engine *reconcile.Engine
	ln     net.Listener // the first daemon's, when opened early
	began  time.Time    // the clock's first time
}

func newEnv(tb testing.TB, o envOptions) *env {
	tb.Helper()
	e := &env{tb: tb, clock: newClock(o.at), began: o.at}
	if o.notify {
		e.ln = listen(tb)
	}
	e.sb = sandboxtest.New(tb, func(c *sandbox.Config) {
		c.NowFunc = e.clock.Now
		if e.ln != nil {
			c.NotifyURL = "http://" + e.ln.Addr().String() + NotificationPath
		}
		if o.sandbox != nil {
			o.sandbox(c)
		}
	})
	e.dir = tb.TempDir()
	e.sb.WriteDOKUBlock(tb, filepath.Join(e.dir, "doku.hcl"))
	e.path = filepath.Join(tb.TempDir(), "ddctl.db")
	e.store = e.openStore()
	if strings.Contains(o.hcl, "binding.payer") {
		e.adoptPayer()
	}
	e.cfg = e.load(o.hcl)
	e.engine = &reconcile.Engine{DOKU: e.client(), Store: e.store, NowFunc: e.clock.Now}
	if !o.noApply {
		e.apply(e.cfg)
	}
	return e
}

// adoptPayer records the binding the sandbox's payments were made
// through as active, as ddctl import would: its customer token goes on
// their refunds.
func (e *env) adoptPayer() {
	e.tb.Helper()
	payer := state.Binding{Address: "binding.payer", CustomerID: sandboxtest.PayerCustomerID, Phone: sandboxtest.PayerPhone,
		Status: state.BindingActive, AuthCode: secret.New(e.sb.PayerAuthCode(e.tb))}
	if err := e.store.PutBinding(context.Background(), payer, e.began.Add(-30*24*time.Hour)); err != nil {
		e.tb.Fatal(err)
	}
}

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// openStore opens the state file as the daemon's process does. Each call
// is another connection, as another process would have.
func (e *env) openStore() *state.Store {
	e.tb.Helper()
	// The state was made long before the tests' clock: it vouches for
	// the keys of every occurrence they plan (a lost or restored state is
	// reconcile's to test).
	st, err := state.OpenWith(e.path, state.OpenOptions{AllowPlaintextSecrets: true,
		NowFunc: func() time.Time { return e.began.Add(-30 * 24 * time.Hour) }})
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(func() { st.Close() })
	return st
}

// load writes hcl as main.hcl next to the doku block and loads the
// directory.
func (e *env) load(hcl string) *spec.Config {
	e.tb.Helper()
	if strings.Contains(hcl, "binding.payer") && !strings.Contains(hcl, `binding "payer"`) {
		hcl += payerHCL // a refund names the payer: declare it
	}
	if err := os.WriteFile(filepath.Join(e.dir, "main.hcl"), []byte(hcl), 0o600); err != nil {
		e.tb.Fatal(err)
	}
	cfg, _, diags := spec.Load(spec.LoadOptions{Dir: e.dir})
	if diags.HasErrors() {
		e.tb.Fatalf("load configuration: %v", diags)
	}
	return cfg
}

// apply stores cfg as the applied configuration, as ddctl apply does.
func (e *env) apply(cfg *spec.Config) {
	e.tb.Helper()
	body, err := cfg.Snapshot()
	if err != nil {
		e.tb.Fatal(err)
	}
	if _, err := e.store.PutAppliedSpec(context.Background(), cfg.Digest, body, 0, e.clock.Now()); err != nil {
		e.tb.Fatal(err)
	}
}

// client is a DOKU client on the shared clock, with no request pacing.
func (e *env) client() *doku.Client {
	e.tb.Helper()
	cc := e.sb.ClientConfig(e.tb)
	cc.TokenCache, cc.NowFunc = e.store, e.clock.Now
	c, err := doku.NewClient(cc)
	if err != nil {
		e.tb.Fatal(err)
	}
	return c
}

// receiver checks notifications as the daemon's does by default: DOKU's
// public key, the client secret, the merchant's key to sign its tokens, on
// the shared clock.
func (e *env) receiver(now func() time.Time) *doku.Receiver {
	e.tb.Helper()
	return e.receiverIn(now, notifySettings{})
}

// notifySettings are the daemon's notification settings (-notification-mode,
// -notification-token); zero fields are the defaults.
type notifySettings struct {
	mode  doku.NotificationMode
	token doku.NotificationToken
}

// receiverIn is receiver with the settings ns.
func (e *env) receiverIn(now func() time.Time, ns notifySettings) *doku.Receiver {
	e.tb.Helper()
	r, err := doku.NewReceiver(doku.ReceiverConfig{
		ClientID:      e.sb.Config.ClientID,
		ClientSecret:  e.sb.Config.ClientSecret,
		DOKUPublicKey: &e.sb.Config.DOKUPrivateKey.PublicKey,
		SigningKey:    e.merchantKey(),
		Mode:          ns.mode,
		Token:         ns.token,
		NowFunc:       now,
	})
	if err != nil {
		e.tb.Fatal(err)
	}
	return r
}

func (e *env) merchantKey() *rsa.PrivateKey {
	e.tb.Helper()
	k, err := doku.LoadPrivateKey(filepath.Join(e.sb.Dir, "merchant.pem"))
	if err != nil {
		e.tb.Fatal(err)
	}
	return k
}

// plan plans targets (nil: everything) at the clock's time.
func (e *env) plan(targets ...string) *reconcile.Plan {
	e.tb.Helper()
	var tg reconcile.Targets
	if targets != nil {
		tg = reconcile.Targets(targets)
	}
	p, err := e.engine.Plan(context.Background(), e.cfg, reconcile.PlanOptions{At: e.clock.Now(), Targets: tg})
	if err != nil {
		e.tb.Fatalf("plan: %v", err)
	}
	return p
}

// applyPlan applies p as ddctl apply does.
func (e *env) applyPlan(p *reconcile.Plan) *reconcile.ApplyResult {
	e.tb.Helper()
	ctx := context.Background()
	run, err := e.store.StartRun(ctx, state.Run{Command: "apply", StartedAt: e.clock.Now(), SpecDigest: e.cfg.Digest})
	if err != nil {
		e.tb.Fatal(err)
	}
	res, err := e.engine.Apply(ctx, p, run, nil)
	if err != nil {
		e.tb.Fatal(err)
	}
	return res
}

// bindAlice binds binding.alice (balance IDR 1,000,000.00), the customer
// confirms, and a plan sees it active: what ddctl apply leaves behind.
func (e *env) bindAlice() {
	e.tb.Helper()
	ctx := context.Background()
	raw, _ := json.Marshal("1000000")
	if _, err := e.sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: alicePhone, Balance: raw}); err != nil {
		e.tb.Fatal(err)
	}
	res := e.applyPlan(e.plan("binding.alice"))
	if len(res.Results) != 1 || res.Results[0].Link == "" {
		e.tb.Fatalf("bind: %+v", res.Results)
	}
	if err := e.sb.Server.Confirm(ctx, path.Base(res.Results[0].Link), true); err != nil {
		e.tb.Fatal(err)
	}
	if p := e.plan("binding.alice"); p.HasChanges() || p.Converged != 1 {
		e.tb.Fatalf("binding after confirming: %+v", p)
	}
}

// chargeGym charges the gym occurrence due now, which the customer has not
// confirmed yet, and returns the attempt.
func (e *env) chargeGym() state.Charge {
	e.tb.Helper()
	res := e.applyPlan(e.plan(gymOccurrence))
	if len(res.Results) != 1 || res.Results[0].Status != reconcile.ResultSucceeded {
		e.tb.Fatalf("charge: %+v", res.Results)
	}
	return e.charge()
}

// charge is the state's only charge attempt.
func (e *env) charge() state.Charge {
	e.tb.Helper()
	rows, err := e.store.Charges(context.Background())
	if err != nil || len(rows) != 1 {
		e.tb.Fatalf("charges: %+v, %v; want one", rows, err)
	}
	return rows[0]
}

func (e *env) events() []state.Event {
	e.tb.Helper()
	ev, err := e.store.Events(context.Background(), 0, 0)
	if err != nil {
		e.tb.Fatal(err)
	}
	return ev
}

// countEvents counts the state's events of type typ.
func (e *env) countEvents(typ state.EventType) int {
	n := 0
	for _, ev := range e.events() {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// notification is DOKU's notification body for the attempt c.
func (e *env) notification(c state.Charge, status string) []byte {
	e.tb.Helper()
	return notificationBody(e.tb, doku.Notification{OriginalPartnerReferenceNo: c.PartnerReferenceNo,
		OriginalReferenceNo: c.ReferenceNo, LatestTransactionStatus: status, TransactionStatusDesc: "Success",
		Amount: doku.NewAmount(c.Amount), AdditionalInfo: doku.NotificationInfo{AccountType: "DIRECT_DEBIT"}})
}

func notificationBody(tb testing.TB, n doku.Notification) []byte {
	tb.Helper()
	b, err := doku.Marshal(n)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// notifier plays DOKU against the daemon at url.
func (e *env) notifier(url string) *sandbox.Notifier {
	return &sandbox.Notifier{URL: url + NotificationPath, ClientID: e.sb.Config.ClientID, ClientSecret: e.sb.Config.ClientSecret,
		DOKUKey: e.sb.Config.DOKUPrivateKey, NowFunc: e.clock.Now}
}

// daemonOptions adjust one daemon of an env.
type daemonOptions struct {
	store     *state.Store                        // default the env's
	wrapStore func(*state.Store) reconcile.Store  // the engine's store
	wrapDOKU  func(reconcile.DOKU) reconcile.DOKU // the engine's DOKU
	daemon    func(*state.Store) Store            // the daemon's store
	configure func(*Config)                       // anything else
	ln        net.Listener                        // default: a new one
	noWait    bool                                // do not wait for StartFunc
	held      bool                                // start with the gate held
	step      *stepper                            // hold the loop after each cycle
	notify    notifySettings                      // the receiver's; default the defaults
}

// running is one daemon under test.
type running struct {
	d      *Daemon
	url    string // DOKU's listener
	admin  string // the operator's: /readyz, /metrics
	cycles *cycleLog
	cancel context.CancelFunc
	done   chan error // Run's result, once
	err    error
	ended  bool
	// gate, while held, keeps cycles from taking the state lock, so that
	// what the HTTP side alone does can be seen.
	gate chan struct{}
}

// start builds a daemon on e as cmd/ddctl/daemon.go does and runs it
// until the test ends; it returns once the daemon serves (StartFunc).
func (e *env) start(o daemonOptions) *running {
	e.tb.Helper()
	st := o.store
	if st == nil {
		st = e.store
	}
	var engineStore reconcile.Store = st
	if o.wrapStore != nil {
		engineStore = o.wrapStore(st)
	}
	var dk reconcile.DOKU = e.client()
	if o.wrapDOKU != nil {
		dk = o.wrapDOKU(dk)
	}
	var daemonStore Store = st
	if o.daemon != nil {
		daemonStore = o.daemon(st)
	}
	ln := o.ln
	if ln == nil {
		ln = listen(e.tb)
	}
	recv := e.receiverIn(e.clock.Now, o.notify)
	dokuBlock, dir := e.cfg.DOKU, e.cfg.Dir
	adm := listen(e.tb)
	r := &running{url: "http://" + ln.Addr().String(), admin: "http://" + adm.Addr().String(), cycles: &cycleLog{changed: make(chan struct{})},
		done: make(chan error, 1), gate: make(chan struct{}, 1)}
	if o.held {
		r.hold()
	}
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	host, _ := os.Hostname()
	info := state.LockInfo{Operation: "daemon", PID: os.Getpid(), Host: host, Who: "test"}
	cfg := Config{
		Store: daemonStore,
		Parts: Parts{
			Engine:   &reconcile.Engine{DOKU: dk, Store: engineStore, NowFunc: e.clock.Now},
			Receiver: recv,
			LoadSpecFunc: func(snapshot []byte) (*spec.Config, error) {
				return spec.FromSnapshot(snapshot, dokuBlock, dir)
			},
		},
		LockFunc: func(ctx context.Context) (func(), error) {
			select {
			case r.gate <- struct{}{}:
				<-r.gate
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			l, err := state.AcquireLock(ctx, e.path, info, 10*time.Second)
			if err != nil {
				return nil, err
			}
			return func() { l.Unlock() }, nil
		},
		Listener:        ln,
		AdminListener:   adm,
		Holder:          state.LeaseInfo{ID: fmt.Sprintf("test-%p", r), PID: os.Getpid(), Host: host, Who: "test"},
		Run:             state.Run{User: "test", Host: host, PID: os.Getpid()},
		ShutdownTimeout: 10 * time.Second,
		NowFunc:         e.clock.Now,
		StartFunc:       func() { close(started) },
		CycleFunc: func(rep CycleReport) {
			r.cycles.add(rep)
			if o.step != nil {
				o.step.hold(ctx, rep)
			}
		},
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		cancel()
		e.tb.Fatal(err)
	}
	r.d = d
	// Counted at every scrape: the tests look at the figures right after
	// what changes them.
	d.metrics.pending.countsFor, d.metrics.page.every = 0, 0
	go func() { r.done <- d.Run(ctx) }()
	e.tb.Cleanup(func() {
		if r.ended {
			return // the test looked at what Run returned
		}
		if err := r.stop(e.tb); err != nil && !o.noWait {
			e.tb.Errorf("Run: %v", err)
		}
	})
	if o.noWait {
		return r
	}
	select {
	case <-started:
	case err := <-r.done:
		r.ended, r.err = true, err
		e.tb.Fatalf("Run returned before serving: %v", err)
	case <-time.After(waitFor):
		e.tb.Fatal("the daemon did not start")
	}
	return r
}

// stop cancels Run and returns what it returned.
func (r *running) stop(tb testing.TB) error {
	tb.Helper()
	r.cancel()
	return r.wait(tb)
}

// wait waits for Run to return.
func (r *running) wait(tb testing.TB) error {
	tb.Helper()
	if r.ended {
		return r.err
	}
	select {
	case r.err = <-r.done:
		r.ended = true
	case <-time.After(waitFor):
		tb.Fatal("Run did not return")
	}
	return r.err
}

func (r *running) hold()    { r.gate <- struct{}{} }
func (r *running) release() { <-r.gate }

// cycleLog keeps the daemon's cycle reports and says when one comes.
type cycleLog struct {
	mu      sync.Mutex
	reports []CycleReport
	changed chan struct{} // closed at each report, then replaced
}

func (l *cycleLog) add(r CycleReport) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reports = append(l.reports, r)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *cycleLog) all() []CycleReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]CycleReport(nil), l.reports...)
}

func (l *cycleLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reports)
}

// wait returns the first report from index from on that ok accepts, and
// its index; it fails the test after waitFor.
func (l *cycleLog) wait(tb testing.TB, from int, what string, ok func(CycleReport) bool) (int, CycleReport) {
	tb.Helper()
	timeout := time.After(waitFor)
	for {
		l.mu.Lock()
		for i := from; i < len(l.reports); i++ {
			if ok(l.reports[i]) {
				r := l.reports[i]
				l.mu.Unlock()
				return i, r
			}
		}
		from = max(from, len(l.reports))
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			all := l.all()
			tb.Fatalf("no cycle %s within %s; %d cycles, the last ones: %+v", what, waitFor, len(all), all[max(0, len(all)-5):])
		}
	}
}

// stepper holds the daemon's loop after each cycle until the test lets
// it go on. The loop works out its next wake only once CycleFunc has
// returned, so a test that moves the clock to CycleReport.Next and then
// lets the loop go has the daemon wake at once, at that time by its
// clock: hours of the daemon's time pass in milliseconds, and every cycle
// is seen, in order, with nothing running meanwhile.
type stepper struct {
	reports chan CycleReport
	resume  chan struct{}
}

func newStepper() *stepper {
	return &stepper{reports: make(chan CycleReport), resume: make(chan struct{})}
}

// hold is the loop's side: it hands rep to the test and waits to be let
// go, or for the daemon to stop.
func (s *stepper) hold(ctx context.Context, rep CycleReport) {
	select {
	case s.reports <- rep:
	case <-ctx.Done():
		return
	}
	select {
	case <-s.resume:
	case <-ctx.Done():
	}
}

// next waits for the next cycle's report; the loop then waits for
// advance.
func (s *stepper) next(tb testing.TB, what string) CycleReport {
	tb.Helper()
	select {
	case rep := <-s.reports:
		return rep
	case <-time.After(waitFor):
		tb.Fatalf("no cycle %s within %s", what, waitFor)
		return CycleReport{}
	}
}

// advance sets c to t and lets the loop go on.
func (s *stepper) advance(tb testing.TB, c *clock, t time.Time) {
	tb.Helper()
	c.Set(t)
	select {
	case s.resume <- struct{}{}:
	case <-time.After(waitFor):
		tb.Fatal("the daemon's loop does not wait to be let go")
	}
}

// get fetches url and returns its status and body.
func get(tb testing.TB, url string) (int, string) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// send sends req and returns the HTTP status and the SNAP responseCode.
func send(tb testing.TB, c *http.Client, req *http.Request) (int, string) {
	tb.Helper()
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var r doku.Result
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &r)
	return resp.StatusCode, string(r.ResponseCode)
}

// metric sums the samples of name in a Prometheus text exposition whose
// labels include the given name=value pairs; found is false if none has.
func metric(text, name string, labels ...string) (sum float64, found bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		sname, rest, _ := strings.Cut(series, "{")
		if sname != name {
			continue
		}
		have := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				have[k] = strings.Trim(v, `"`)
			}
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		sum, found = sum+v, true
	}
	return sum, found
}

// scrape is the daemon's /metrics.
func (r *running) scrape(tb testing.TB) string {
	tb.Helper()
	status, body := get(tb, r.admin+"/metrics")
	if status != http.StatusOK {
		tb.Fatalf("GET /metrics: HTTP %d\n%s", status, body)
	}
	return body
}

// spyDOKU embeds the engine's DOKU and calls its hooks around calls.
type spyDOKU struct {
	reconcile.DOKU
	onPay         func()
	onRefund      func() // as a refund request leaves
	onRefundReply func() // as its answer is back
}

func (s spyDOKU) Pay(ctx context.Context, req doku.PaymentRequest, opts doku.RequestOptions) (*doku.PaymentResponse, error) {
	if s.onPay != nil {
		s.onPay()
	}
	return s.DOKU.Pay(ctx, req, opts)
}

func (s spyDOKU) Refund(ctx context.Context, req doku.RefundRequest, opts doku.RequestOptions) (*doku.RefundResponse, error) {
	if s.onRefund != nil {
		s.onRefund()
	}
	resp, err := s.DOKU.Refund(ctx, req, opts)
	if s.onRefundReply != nil {
		s.onRefundReply()
	}
	return resp, err
}
