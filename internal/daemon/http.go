package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/state"
)

// maxHeaderBytes caps a request's header block on both listeners: DOKU's
// requests carry a token, a signature and a few SNAP headers, well under
// it. Larger is answered 431 before a handler runs.
const maxHeaderBytes = 16 << 10

// PublicHandler serves what DOKU calls, on the listener it reaches:
//
//	POST /notifications/doku                 DOKU's payment notifications
//	POST /authorization/v1/access-token/b2b  the token DOKU asks for first
//	GET  /healthz                            200 while the process serves
func (d *Daemon) PublicHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+NotificationPath, d.handleNotification)
	mux.HandleFunc("POST "+doku.PathTokenB2B, func(w http.ResponseWriter, r *http.Request) {
		// A DOKU signature is good for X-TIMESTAMP's window (5 minutes
		// either way): whoever captured one could mint tokens with it
		// until then. DOKU asks for one now and then; more is refused.
		if !d.tokenRate.take(d.now()) {
			d.metrics.notifications.WithLabelValues("token_refused").Inc()
			w.Header().Set("Retry-After", "10")
			(&doku.NotificationError{Code: doku.CodeTokenTooMany, HTTPStatus: http.StatusTooManyRequests}).Respond(w)
			return
		}
		d.parts.Load().Receiver.ServeToken(w, r)
	})
	mux.HandleFunc("GET /healthz", healthz)
	return mux
}

// AdminHandler serves the operator, on a listener of its own:
//
//	GET /healthz  200 while the process serves
//	GET /readyz   200 once it reconciles an applied configuration
//	GET /metrics  Prometheus
func (d *Daemon) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", d.handleReady)
	mux.Handle("GET /metrics", d.metrics.page)
	return mux
}

func healthz(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }

// limitListener accepts at most n connections at once, and, when pace is
// not 0, at most one per pace: the next Accept waits, and the kernel's
// backlog holds the rest, costing the process nothing.
func limitListener(l net.Listener, n int, pace time.Duration) net.Listener {
	return &limitedListener{Listener: l, slots: make(chan struct{}, n), pace: pace, done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	slots  chan struct{}
	pace   time.Duration
	next   time.Time     // the earliest next accept; Accept has one caller at a time
	done   chan struct{} // closed by Close: an Accept waiting ends
	closed sync.Once
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	if wait := time.Until(l.next); l.pace > 0 && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			<-l.slots
			return nil, net.ErrClosed
		}
	}
	l.next = time.Now().Add(l.pace)
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitedListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// handleNotification verifies a notification, records it in the inbox
// (once: a resend is a duplicate, answered the same) and answers 200
// before anything is done with it; the loop applies it. A notification
// that does not verify or parse is refused with DOKU's 401 or 400 and
// changes nothing. If it cannot be recorded, the answer is 500, so that
// DOKU sends it again.
func (d *Daemon) handleNotification(w http.ResponseWriter, r *http.Request) {
	rcv := d.parts.Load().Receiver
	// The bearer token first: nothing more of a request without a token
	// this daemon issued is read.
	if err := rcv.CheckBearer(r); err != nil {
		d.refuse(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNotificationBody))
	if err != nil {
		d.metrics.notifications.WithLabelValues("refused").Inc()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("notification body over %d bytes", maxNotificationBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read the body", http.StatusBadRequest)
		return
	}
	n, err := rcv.Verify(r, body)
	if err != nil {
		d.refuse(w, r, err)
		return
	}
	got, err := d.cfg.Store.RecordNotification(r.Context(), state.Notification{
		ExternalID: n.ExternalID, DedupKey: n.DedupKey(), Body: body, Signed: n.Signed}, d.now())
	if err != nil {
		d.metrics.notifications.WithLabelValues("error").Inc()
		d.log.Error("notification not recorded; DOKU will send it again", "partner_reference_no", n.OriginalPartnerReferenceNo, "error", err)
		http.Error(w, "not recorded; send again later", http.StatusInternalServerError)
		return
	}
	switch got {
	case state.NotificationIDConflict:
		// SNAP makes X-EXTERNAL-ID unique per day: a different
		// notification under one already used today is a replay or a
		// fault at the sender. It is not recorded; the periodic
		// reconcile asks DOKU about the payment anyway.
		d.metrics.notifications.WithLabelValues("conflict").Inc()
		d.log.Warn("notification refused: its X-EXTERNAL-ID was used today by another notification; the periodic reconcile asks DOKU about the payment",
			"external_id", n.ExternalID, "partner_reference_no", n.OriginalPartnerReferenceNo, "status", n.LatestTransactionStatus)
		(&doku.NotificationError{Code: doku.CodeNotifyConflict, HTTPStatus: http.StatusConflict}).Respond(w)
		return
	case state.NotificationRecorded:
		d.metrics.notifications.WithLabelValues("accepted").Inc()
		poke(d.notified)
	default:
		d.metrics.notifications.WithLabelValues("duplicate").Inc()
	}
	d.log.Debug("notification", "result", got, "partner_reference_no", n.OriginalPartnerReferenceNo, "status", n.LatestTransactionStatus, "signed", n.Signed)
	doku.Ack(w)
}

// refuse answers a notification that does not verify, counts it, and logs
// it at a rate: a flood of forgeries is a line every refusalLogEvery with
// how many there were, not a line each.
func (d *Daemon) refuse(w http.ResponseWriter, r *http.Request, err error) {
	d.metrics.notifications.WithLabelValues("refused").Inc()
	// The connection closes after the answer, and what is left of the
	// body is not read: otherwise the server would read it (up to 256 KiB,
	// as slowly as the sender likes) to keep the connection for another
	// request, holding one of the listener's few slots.
	w.Header().Set("Connection", "close")
	defer http.NewResponseController(w).SetReadDeadline(time.Now())
	var ne *doku.NotificationError
	if !errors.As(err, &ne) {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	// The reason never quotes the token, the secret or the body.
	if n, ok := d.refusals.allow(d.now()); ok {
		d.log.Info("notification refused", "reason", ne.Reason, "snap_code", ne.Code, "remote", r.RemoteAddr, "refused_since_last_line", n)
	}
	ne.Respond(w)
}

// refusalLogEvery is how often at most a refused request is logged.
const refusalLogEvery = 10 * time.Second

// rateLog lets one line through per period and counts the rest.
type rateLog struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

// allow reports whether a line may be written now, and how many were held
// back since the last one.
func (l *rateLog) allow(now time.Time) (held int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < refusalLogEvery && now.After(l.last) {
		l.missed++
		return 0, false
	}
	held, l.missed, l.last = l.missed, 0, now
	return held, true
}

func (d *Daemon) handleReady(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	why := d.ready
	d.mu.Unlock()
	if why != "" {
		http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// Token requests DOKU may make: a burst of tokenBurst, then one per
// tokenEvery.
const (
	tokenBurst = 60
	tokenEvery = time.Second
)

// bucket is a token bucket: take succeeds while it holds one.
type bucket struct {
	mu    sync.Mutex
	burst float64
	every time.Duration
	have  float64
	last  time.Time
}

func newBucket(burst int, every time.Duration) *bucket {
	return &bucket{burst: float64(burst), every: every, have: float64(burst)}
}

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.have = min(b.burst, b.have+float64(now.Sub(b.last))/float64(b.every))
	}
	b.last = now
	if b.have < 1 {
		return false
	}
	b.have--
	return true
}
