package doku_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ddctl/ddctl/internal/doku"
)

// checkRefusal fails unless err is a *NotificationError with one of the
// codes a Receiver answers and its HTTP status.
func checkRefusal(t *testing.T, err error) *doku.NotificationError {
	t.Helper()
	var ne *doku.NotificationError
	if !errors.As(err, &ne) {
		t.Fatalf("error %v (%T), want a *NotificationError", err, err)
	}
	switch ne.Code {
	case doku.CodeNotifyUnauthorized, doku.CodeNotifyInvalidToken,
		doku.CodeNotifyBadRequest, doku.CodeNotifyBadFormat, doku.CodeNotifyMissingField:
	default:
		t.Fatalf("refusal code %s (%s): not a notification code", ne.Code, ne.Reason)
	}
	if ne.HTTPStatus != ne.Code.HTTPStatus() {
		t.Fatalf("refusal HTTP %d with code %s", ne.HTTPStatus, ne.Code)
	}
	return ne
}

// checkNotification fails unless n's required fields are valid.
func checkNotification(t *testing.T, n *doku.Notification) {
	t.Helper()
	s := n.LatestTransactionStatus
	if n.OriginalPartnerReferenceNo == "" || len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		t.Fatalf("accepted notification %+v: empty reference or status not two digits", n)
	}
	if _, err := n.Amount.Money(); err != nil {
		t.Fatalf("accepted notification with amount %+v: %v", n.Amount, err)
	}
}

func FuzzParseNotification(f *testing.F) {
	for _, s := range []string{
		notifyBody,
		`{"originalPartnerReferenceNo":"a","latestTransactionStatus":"06","amount":{"value":"0.00","currency":"IDR"}}`,
		`{"originalPartnerReferenceNo":"a","latestTransactionStatus":"06","amount":{"value":"0.00","currency":"IDR"},"additionalInfo":""}`,
		`{"originalPartnerReferenceNo":"a","latestTransactionStatus":"00","amount":{"value":"9999999999999999.99","currency":"IDR"},"originalExternalId":482133779065,"additionalInfo":{"lineItems":[{"quantity":1}],"origin":{}}}`,
		`{"originalPartnerReferenceNo":"a","latestTransactionStatus":"0","amount":{"value":"1.00","currency":"IDR"}}`,
		`{"originalPartnerReferenceNo":"a","latestTransactionStatus":"00","amount":{"value":"01.00","currency":"IDR"}}`,
		`{"ORIGINALPARTNERREFERENCENO":"a","latestTransactionStatus":"00","amount":{"value":"1.00","currency":"IDR"}}`,
		`{"originalPartnerReferenceNo":"a","originalPartnerReferenceNo":"","latestTransactionStatus":"00","amount":{"value":"1.00","currency":"IDR"}}`,
		`{"amount":"25000.00"}`,
		`null`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := doku.ParseNotification(body)
		if err != nil {
			if n != nil {
				t.Fatalf("notification %+v with error %v", n, err)
			}
			if ne := checkRefusal(t, err); ne.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("body refused with HTTP %d, want 400", ne.HTTPStatus)
			}
			return
		}
		checkNotification(t, n)
		if n.ExternalID != "" {
			t.Fatalf("ExternalID %q from the body", n.ExternalID)
		}
	})
}

// fuzzEnv is one Receiver per mode, all on one clock and one token, and
// the one notification DOKU's key signed for each.
type fuzzEnv struct {
	receivers [3]*doku.Receiver // asymmetric, symmetric, token-only
	token     string
	timestamp string
	sigs      [3]string // a valid X-SIGNATURE per receiver ("" for token-only)
}

var fuzzModes = [3]doku.NotificationMode{doku.ModeAsymmetric, doku.ModeSymmetric, doku.ModeTokenOnly}

// newFuzzEnv issues the token and signs the notification; each fuzzing
// process runs it once.
func newFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	fe := &fuzzEnv{}
	var tokenEnv *receiverEnv
	for i, m := range fuzzModes {
		e := newReceiverEnv(tb, m, false)
		fe.receivers[i] = e.r
		if i == 0 {
			tokenEnv = e
			// Every Receiver here has the same signing key, client ID and time.
			fe.token = e.token(tb)
			fe.timestamp = e.clock.stamp(0)
		}
		req, _ := tokenEnv.request(tb, notifySpec{sign: m, token: fe.token, timestamp: fe.timestamp})
		fe.sigs[i] = req.Header.Get("X-SIGNATURE")
	}
	return fe
}

// FuzzVerifyNotification sends random notifications to a Receiver of each
// mode. Whatever the input, Verify does not panic, refuses with a
// NotificationError that leaks nothing, accepts only the token it issued,
// and, in the signing modes, accepts only the exact body and timestamp
// DOKU's key (or the client secret) signed.
func FuzzVerifyNotification(f *testing.F) {
	fe := newFuzzEnv(f)
	bearer := "Bearer " + fe.token
	tampered := strings.Replace(notifyBody, "25000.00", "25001.00", 1)
	for i := range fuzzModes {
		mode := uint8(i)
		f.Add(mode, bearer, fe.timestamp, notifyClientID, notifyExtID, fe.sigs[i], []byte(notifyBody))
		f.Add(mode, bearer, fe.timestamp, notifyClientID, notifyExtID, fe.sigs[i], []byte(tampered))
		f.Add(mode, bearer, fe.timestamp, "", notifyExtID, fe.sigs[i], []byte(notifyBody+" "))
		f.Add(mode, bearer, fe.timestamp, notifyClientID, notifyExtID, fe.sigs[(i+1)%3], []byte(notifyBody))
		f.Add(mode, bearer, fe.timestamp, notifyClientID, notifyExtID, "", []byte(notifyBody))
		f.Add(mode, "bearer "+fe.token+"=", fe.timestamp, notifyClientID, notifyExtID, fe.sigs[i], []byte(notifyBody))
		f.Add(mode, bearer, "2026-03-14T03:15:30Z", notifyClientID, "1", fe.sigs[i], []byte(`{}`))
	}
	f.Fuzz(func(t *testing.T, mode uint8, authorization, timestamp, partnerID, externalID, signature string, body []byte) {
		i := int(mode) % len(fuzzModes)
		h := http.Header{}
		for k, v := range map[string]string{
			"Authorization": authorization, "X-Timestamp": timestamp, "X-Partner-Id": partnerID,
			"X-External-Id": externalID, "X-Signature": signature,
		} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		req := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: notifyPath}, Header: h}
		n, err := fe.receivers[i].Verify(req, body)
		if err != nil {
			if n != nil {
				t.Fatalf("notification with error %v", err)
			}
			checkRefusal(t, err)
			assertNoLeak(t, err, "Bearer "+fe.token, "")
			return
		}
		if _, tok, _ := strings.Cut(authorization, " "); tok != fe.token {
			t.Fatalf("accepted Authorization %q, not the issued token", authorization)
		}
		signed := string(body)
		if fuzzModes[i] == doku.ModeSymmetric {
			// DOKU signs the minified body: whitespace between tokens is
			// not part of what is signed.
			var min bytes.Buffer
			if json.Compact(&min, body) == nil {
				signed = min.String()
			}
		}
		if fuzzModes[i] != doku.ModeTokenOnly && (signed != notifyBody || timestamp != fe.timestamp) {
			t.Fatalf("%s receiver accepted body %q at %q; DOKU signed only %q at %q", fuzzModes[i], body, timestamp, notifyBody, fe.timestamp)
		}
		checkNotification(t, n)
		if n.ExternalID != externalID {
			t.Fatalf("ExternalID=%q, want the header's %q", n.ExternalID, externalID)
		}
	})
}
