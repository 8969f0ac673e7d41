package daemon

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ddctl/ddctl/internal/doku"
)

// Handler serves the daemon's endpoints:
//
//	POST /notifications/doku                 DOKU's payment notifications
//	POST /authorization/v1/access-token/b2b  the token DOKU asks for first
//	GET  /healthz                            200 while the process serves
//	GET  /readyz                             200 once it reconciles an applied configuration
//	GET  /metrics                            Prometheus
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+NotificationPath, d.handleNotification)
	mux.HandleFunc("POST "+doku.PathTokenB2B, func(w http.ResponseWriter, r *http.Request) {
		d.parts.Load().Receiver.ServeToken(w, r)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", d.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.registry, promhttp.HandlerOpts{}))
	return mux
}

// handleNotification verifies a notification, records it in the inbox
// (once: a resend is a duplicate, answered the same) and answers 200
// before anything is done with it; the loop applies it. A notification
// that does not verify or parse is refused with DOKU's 401 or 400 and
// changes nothing. If it cannot be recorded, the answer is 500, so that
// DOKU sends it again (SNAP-ALLO.md §8.4, §8.5).
func (d *Daemon) handleNotification(w http.ResponseWriter, r *http.Request) {
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
	n, err := d.parts.Load().Receiver.Verify(r, body)
	if err != nil {
		d.metrics.notifications.WithLabelValues("refused").Inc()
		var ne *doku.NotificationError
		if errors.As(err, &ne) {
			// The reason never quotes the token, the secret or the body.
			d.log.Info("notification refused", "reason", ne.Reason, "snap_code", ne.Code, "remote", r.RemoteAddr)
			ne.Respond(w)
			return
		}
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	inserted, err := d.cfg.Store.RecordNotification(r.Context(), n.ExternalID, n.DedupKey(), body, d.now())
	if err != nil {
		d.metrics.notifications.WithLabelValues("error").Inc()
		d.log.Error("notification not recorded; DOKU will send it again", "partner_reference_no", n.OriginalPartnerReferenceNo, "error", err)
		http.Error(w, "not recorded; send again later", http.StatusInternalServerError)
		return
	}
	result := "duplicate"
	if inserted {
		result = "accepted"
		poke(d.notified)
	}
	d.metrics.notifications.WithLabelValues(result).Inc()
	d.log.Debug("notification", "result", result, "partner_reference_no", n.OriginalPartnerReferenceNo, "status", n.LatestTransactionStatus)
	doku.Ack(w)
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
