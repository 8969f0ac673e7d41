package daemon

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
)

// metrics are what GET /metrics shows, in the daemon's own registry.
type metrics struct {
	registry      *prometheus.Registry
	pending       *pendingCollector
	page          *metricsPage
	runs          *prometheus.CounterVec   // trigger, result
	duration      *prometheus.HistogramVec // trigger
	apiCalls      *prometheus.CounterVec   // operation, code
	actions       *prometheus.CounterVec   // kind, status
	notifications *prometheus.CounterVec   // result
	events        *prometheus.CounterVec   // type, result
	conflicts     prometheus.Counter
	lastSuccess   prometheus.Gauge
	leaseHeld     prometheus.Gauge
}

// Counts is what the pending-items gauges read (at most once per
// countsFor).
type Counts interface {
	PendingCounts(ctx context.Context) (map[string]int, error)
}

func newMetrics(counts Counts) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ddctl_reconcile_runs_total",
			Help: "Reconcile cycles, by what triggered them and how they ended (success, error, skipped: another run held the state).",
		}, []string{"trigger", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ddctl_reconcile_duration_seconds",
			Help:    "How long a reconcile cycle took, from taking the state lock to releasing it.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"trigger"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ddctl_api_calls_total",
			Help: "Calls to DOKU, by operation and SNAP response code (\"error\": no SNAP answer, such as a timeout).",
		}, []string{"operation", "code"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ddctl_actions_total",
			Help: "Actions applied, by kind and result.",
		}, []string{"kind", "status"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ddctl_notifications_total",
			Help: "DOKU notifications received, by result (accepted, duplicate, conflict: an X-EXTERNAL-ID used today by another, refused, error).",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ddctl_events_total",
			Help: "Outgoing webhook events, by type and delivery result.",
		}, []string{"type", "result"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ddctl_notification_conflicts_total",
			Help: "Notifications, confirmed by status inquiry, that an attempt the state had as not paid was paid: look at that occurrence.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ddctl_last_successful_reconcile_timestamp_seconds",
			Help: "Unix time at which the last reconcile cycle succeeded.",
		}),
		leaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ddctl_daemon_lease_held",
			Help: "1 while this daemon holds the state's lease.",
		}),
	}
	m.pending = &pendingCollector{counts: counts, countsFor: countsFor, now: time.Now}
	m.page = &metricsPage{gather: m.registry, every: metricsEvery, now: time.Now}
	m.registry.MustRegister(m.runs, m.duration, m.apiCalls, m.actions, m.notifications, m.events, m.conflicts, m.lastSuccess, m.leaseHeld,
		m.pending,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// pendingCollector reads the state's pending items at most once per
// countsFor, whatever the number of scrapers: the counts run on the
// state's one connection, which DOKU's notifications need. Scrapes in
// between, and scrapes while a count runs, get the last figures.
type pendingCollector struct {
	counts    Counts
	countsFor time.Duration
	now       func() time.Time

	mu   sync.Mutex
	at   time.Time
	last map[string]int
}

// countsFor is how long the pending counts of a scrape serve the next.
const countsFor = 5 * time.Second

// read returns the pending counts, counting again only when the last are
// older than countsFor.
func (c *pendingCollector) read() (map[string]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.last != nil && now.Sub(c.at) < c.countsFor && !now.Before(c.at) {
		return c.last, nil
	}
	counts, err := c.counts.PendingCounts(context.Background())
	if err != nil {
		return nil, err
	}
	c.at, c.last = now, counts
	return counts, nil
}

var (
	pendingDesc = prometheus.NewDesc("ddctl_pending_items",
		"Items waiting on DOKU or the customer, by kind (charge, refund, binding, operation, notification, event).", []string{"kind"}, nil)
	queueDesc = prometheus.NewDesc("ddctl_notification_queue_depth",
		"Notifications received and not yet processed.", nil, nil)
)

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- queueDesc
}

func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.read()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		return
	}
	for kind, n := range counts {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(counts["notification"]))
}

// countingDOKU counts each call to DOKU by operation and response code.
type countingDOKU struct {
	reconcile.DOKU
	calls *prometheus.CounterVec
}

// count counts one call: code is read only when err is nil.
func (c countingDOKU) count(op string, err error, code func() doku.Code) {
	var label string
	var derr *doku.Error
	switch {
	case err == nil:
		label = string(code())
	case errors.As(err, &derr) && derr.Code != "":
		label = string(derr.Code)
	default:
		label = "error"
	}
	c.calls.WithLabelValues(op, label).Inc()
}

func (c countingDOKU) Refund(ctx context.Context, req doku.RefundRequest, opts doku.RequestOptions) (*doku.RefundResponse, error) {
	r, err := c.DOKU.Refund(ctx, req, opts)
	c.count("refund", err, func() doku.Code { return r.ResponseCode })
	return r, err
}

func (c countingDOKU) PaymentStatus(ctx context.Context, req doku.StatusRequest, opts doku.RequestOptions) (*doku.StatusResponse, error) {
	r, err := c.DOKU.PaymentStatus(ctx, req, opts)
	c.count("payment_status", err, func() doku.Code { return r.ResponseCode })
	return r, err
}

func (c countingDOKU) BindAccount(ctx context.Context, req doku.BindingRequest, opts doku.RequestOptions) (*doku.BindingResponse, error) {
	r, err := c.DOKU.BindAccount(ctx, req, opts)
	c.count("bind", err, func() doku.Code { return r.ResponseCode })
	return r, err
}

func (c countingDOKU) Balance(ctx context.Context, opts doku.RequestOptions) (*doku.BalanceResponse, error) {
	r, err := c.DOKU.Balance(ctx, opts)
	c.count("balance", err, func() doku.Code { return r.ResponseCode })
	return r, err
}

func (c countingDOKU) Pay(ctx context.Context, req doku.PaymentRequest, opts doku.RequestOptions) (*doku.PaymentResponse, error) {
	r, err := c.DOKU.Pay(ctx, req, opts)
	c.count("payment", err, func() doku.Code { return r.ResponseCode })
	return r, err
}

func (c countingDOKU) Unbind(ctx context.Context, opts doku.RequestOptions) (*doku.UnbindingResponse, error) {
	r, err := c.DOKU.Unbind(ctx, opts)
	c.count("unbind", err, func() doku.Code { return r.ResponseCode })
	return r, err
}

func (c countingDOKU) CustomerToken(ctx context.Context, authCode secret.Value) (secret.Value, error) {
	t, err := c.DOKU.CustomerToken(ctx, authCode)
	c.count("customer_token", err, func() doku.Code { return doku.CodeTokenIssued })
	return t, err
}

// metricsPage is GET /metrics: the registry rendered at most once per
// every, the same bytes served to every scrape in between, so that
// scrapers in any number cost the process one rendering a second.
type metricsPage struct {
	gather prometheus.Gatherer
	every  time.Duration
	now    func() time.Time

	mu   sync.Mutex
	at   time.Time
	body []byte
}

// metricsEvery is how long one rendering of /metrics serves.
const metricsEvery = time.Second

var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

func (p *metricsPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := p.render()
	if err != nil {
		http.Error(w, "metrics unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", string(textFormat))
	w.Write(body)
}

func (p *metricsPage) render() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.body != nil && now.Sub(p.at) < p.every && !now.Before(p.at) {
		return p.body, nil
	}
	families, err := p.gather.Gather()
	if err != nil && len(families) == 0 {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, textFormat)
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	p.at, p.body = now, buf.Bytes()
	return p.body, nil
}
