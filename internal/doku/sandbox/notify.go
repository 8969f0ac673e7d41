package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/secret"
)

// DOKU notifies the merchant of a payment's success or failure (docs/doku.md#notifications): it
// first asks the merchant's token endpoint for a token (signed with DOKU's
// key), then posts the notification with that token and a signature. A
// notification not answered 2xx is tried again 30 minutes, 6 hours and 12
// hours after the first attempt (docs/doku.md#notification-retries), times Config.NotifyRetryScale.

// notifyRetries are DOKU's retry times, after the first attempt (docs/doku.md#notification-retries).
var notifyRetries = [...]time.Duration{30 * time.Minute, 6 * time.Hour, 12 * time.Hour}

// DefaultNotifyRetryScale shrinks DOKU's retry schedule for a local
// sandbox: 30 min, 6 h, 12 h become 5 s, 60 s, 120 s.
const DefaultNotifyRetryScale = 1.0 / 360

// enqueueNotification records the notification of a payment's new status,
// in the transaction that changed it.
func (s *Server) enqueueNotification(ctx context.Context, tx *sqlx.Tx, ref string, now time.Time) error {
	if s.cfg.NotifyURL == "" {
		return nil
	}
	p, err := getPayment(ctx, tx, ref, "")
	if err != nil || p == nil {
		return fmt.Errorf("notify payment %s: %v", ref, cmpErr(err, ErrNotFound))
	}
	n := doku.Notification{
		OriginalPartnerReferenceNo: p.PartnerReferenceNo,
		OriginalReferenceNo:        p.ReferenceNo,
		OriginalExternalID:         p.ExternalID,
		LatestTransactionStatus:    p.Status,
		TransactionStatusDesc:      statusDesc(p.Status),
		Amount:                     doku.NewAmount(money.Amount(p.Amount)),
		AdditionalInfo:             doku.NotificationInfo{CustIDMerchant: p.CustIDMerchant, AccountType: "DIRECT_DEBIT"},
	}
	body, err := doku.Marshal(n)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO notifications (partner_reference_no, external_id, body, created_at, next_at) VALUES (?, ?, ?, ?, ?)`,
		ref, doku.NewExternalID(now), body, now.UnixNano(), now.UnixNano())
	return err
}

// deliverNotifications sends the notifications that fell due.
func (s *Server) deliverNotifications(ctx context.Context) error {
	if s.cfg.NotifyURL == "" {
		return nil
	}
	now := s.now()
	var due []struct {
		ID         int64  `db:"id"`
		ExternalID string `db:"external_id"`
		Body       []byte `db:"body"`
		Attempts   int    `db:"attempts"`
		CreatedAt  int64  `db:"created_at"`
	}
	ctx = context.WithoutCancel(ctx) // a caller hanging up must not cut a delivery short
	if err := s.ledger.db.SelectContext(ctx, &due, `SELECT id, external_id, body, attempts, created_at FROM notifications
		WHERE status = 'pending' AND next_at <= ? ORDER BY id`, now.UnixNano()); err != nil {
		return err
	}
	for _, n := range due {
		f := s.faults.get()
		if f.NotifyDelay > 0 && n.Attempts == 0 && now.Before(time.Unix(0, n.CreatedAt).Add(f.NotifyDelay)) {
			continue // late: not yet, and its fate is not drawn yet
		}
		var err error
		switch x := rand.Float64(); {
		case x < f.NotifyDropRate:
			// Missing: DOKU believes it delivered.
		default:
			err = s.notify(ctx, n.ExternalID, n.Body)
			if err == nil && x < f.NotifyDropRate+f.NotifyDuplicateRate {
				err = s.notify(ctx, n.ExternalID, n.Body) // the same event twice
			}
		}
		if err == nil {
			_, err = s.ledger.db.ExecContext(ctx, `UPDATE notifications SET status = 'delivered', attempts = attempts + 1 WHERE id = ?`, n.ID)
			if err != nil {
				return err
			}
			continue
		}
		s.log.Info("notification not acknowledged", "id", n.ID, "error", err)
		status, next := "pending", int64(0)
		if n.Attempts < len(notifyRetries) {
			next = time.Unix(0, n.CreatedAt).Add(time.Duration(float64(notifyRetries[n.Attempts]) * s.cfg.NotifyRetryScale)).UnixNano()
		} else {
			status = "failed" // DOKU gives up; the back office can resend by hand
		}
		if _, err := s.ledger.db.ExecContext(ctx, `UPDATE notifications SET status = ?, attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?`,
			status, next, err.Error(), n.ID); err != nil {
			return err
		}
	}
	return nil
}

// notify makes one delivery: a token from the merchant, then the post.
func (s *Server) notify(ctx context.Context, externalID string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n := Notifier{URL: s.cfg.NotifyURL, TokenURL: s.merchantTokenURL(), ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret,
		DOKUKey: s.cfg.DOKUPrivateKey, Mode: s.cfg.NotifyMode, Client: s.httpClient, NowFunc: s.now}
	token, err := s.notifyToken(ctx, &n)
	if err != nil {
		return err
	}
	status, err := n.Post(ctx, token, externalID, body)
	if err != nil {
		return err
	}
	if status == http.StatusUnauthorized {
		s.forgetNotifyToken(token) // asked afresh next time
	}
	if status/100 != 2 {
		return fmt.Errorf("merchant answered HTTP %d", status)
	}
	return nil
}

// notifyTokenReuse is how long a token from the merchant is used for
// deliveries: well within the 15 minutes the merchant's tokens last.
const notifyTokenReuse = 10 * time.Minute

// notifyToken is the merchant's token for a delivery: the last one while
// it is fresh, else a new one.
func (s *Server) notifyToken(ctx context.Context, n *Notifier) (string, error) {
	t := &s.merchantToken
	t.Lock()
	defer t.Unlock()
	now := s.now()
	if t.token != "" && !now.Before(t.at) && now.Sub(t.at) < notifyTokenReuse {
		return t.token, nil
	}
	token, err := n.Token(ctx)
	if err != nil {
		return "", err
	}
	t.token, t.at = token, now
	return token, nil
}

func (s *Server) forgetNotifyToken(token string) {
	t := &s.merchantToken
	t.Lock()
	defer t.Unlock()
	if t.token == token {
		t.token = ""
	}
}

// Notifier sends notifications to a merchant as DOKU does: a token from
// the merchant's token endpoint, asked with DOKU's signature, then the notification with that token and X-SIGNATURE in
// Mode. The sandbox delivers with it; tests use it to play DOKU, forged
// requests included. Its zero value is not usable: URL, ClientID and
// DOKUKey are required.
type Notifier struct {
	URL          string // the merchant's notification URL
	TokenURL     string // default: URL's scheme and host with doku.PathTokenB2B
	ClientID     string
	ClientSecret secret.Value          // signs the notification in doku.ModeSymmetric, the default
	DOKUKey      *rsa.PrivateKey       // DOKU's key: signs the token request and, in doku.ModeAsymmetric, the notification
	Mode         doku.NotificationMode // default doku.DefaultNotificationMode
	Client       *http.Client          // default http.DefaultClient
	NowFunc      func() time.Time      // default time.Now
}

func (n *Notifier) now() time.Time {
	if n.NowFunc != nil {
		return n.NowFunc()
	}
	return time.Now()
}

func (n *Notifier) client() *http.Client {
	if n.Client != nil {
		return n.Client
	}
	return http.DefaultClient
}

func stamp(t time.Time) string { return t.In(doku.ExternalIDZone).Format(doku.TimestampLayout) }

// Token asks the merchant's token endpoint for a token, as DOKU does
// before notifying (docs/doku.md#merchant-token-endpoint).
func (n *Notifier) Token(ctx context.Context) (string, error) {
	tokenURL := n.TokenURL
	if tokenURL == "" {
		u, err := url.Parse(n.URL)
		if err != nil {
			return "", err
		}
		tokenURL = u.Scheme + "://" + u.Host + doku.PathTokenB2B
	}
	ts := stamp(n.now())
	sig, err := doku.SignAsymmetric(n.DOKUKey, n.ClientID, ts)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, bytes.NewReader([]byte(`{"grantType":"client_credentials"}`)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CLIENT-KEY", n.ClientID)
	req.Header.Set("X-TIMESTAMP", ts)
	req.Header.Set("X-SIGNATURE", sig)
	resp, err := n.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("merchant token: %w", err)
	}
	defer resp.Body.Close()
	var tr doku.TokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&tr); err != nil || resp.StatusCode != 200 || tr.AccessToken == "" {
		return "", fmt.Errorf("merchant token: HTTP %d %s", resp.StatusCode, tr.ResponseCode)
	}
	return tr.AccessToken, nil
}

// Post sends one notification with token and returns the merchant's HTTP
// status.
func (n *Notifier) Post(ctx context.Context, token, externalID string, body []byte) (int, error) {
	req, err := n.Request(ctx, token, externalID, body)
	if err != nil {
		return 0, err
	}
	resp, err := n.client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}

// Request builds a signed notification request, for a caller that wants
// to change it (a test forging one) before sending it.
func (n *Notifier) Request(ctx context.Context, token, externalID string, body []byte) (*http.Request, error) {
	u, err := url.Parse(n.URL)
	if err != nil {
		return nil, err
	}
	ts := stamp(n.now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TIMESTAMP", ts)
	req.Header.Set("X-PARTNER-ID", n.ClientID)
	req.Header.Set("X-EXTERNAL-ID", externalID)
	req.Header.Set("Authorization", "Bearer "+token)
	switch cmp.Or(n.Mode, doku.DefaultNotificationMode) {
	case doku.ModeSymmetric:
		if n.ClientSecret.IsZero() {
			return nil, errors.New("notifier: symmetric mode signs with the client secret, and none was given")
		}
		req.Header.Set("X-SIGNATURE", doku.SignSymmetric(n.ClientSecret.Reveal(), http.MethodPost, u.RequestURI(), token, body, ts))
	case doku.ModeTokenOnly:
	case doku.ModeAsymmetric:
		sig, err := doku.SignAsymmetricTransaction(n.DOKUKey, http.MethodPost, u.RequestURI(), body, ts)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-SIGNATURE", sig)
	default:
		return nil, fmt.Errorf("notifier: notification mode %q is unknown: want %q, %q or %q", n.Mode, doku.ModeAsymmetric, doku.ModeSymmetric, doku.ModeTokenOnly)
	}
	return req, nil
}

func (s *Server) merchantTokenURL() string {
	if s.cfg.MerchantTokenURL != "" {
		return s.cfg.MerchantTokenURL
	}
	u, err := url.Parse(s.cfg.NotifyURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + doku.PathTokenB2B
}
