package doku

import (
	"errors"
	"fmt"
	"time"
)

// Outcome is what an answer means for the operation that was asked.
type Outcome int

// The four outcomes of a call (README.md, "How it works").
const (
	// Succeeded: DOKU did it.
	Succeeded Outcome = iota
	// Failed: DOKU refused it for good; sending it again will not help.
	Failed
	// RetryLater: nothing happened; the same call may be sent again later.
	RetryLater
	// Unknown: the call may or may not have taken effect. Ask (status
	// inquiry) before sending it again.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	case RetryLater:
		return "retry later"
	case Unknown:
		return "outcome unknown"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Error is a call that did not succeed: DOKU's answer, or a transport
// failure. Callers branch on Outcome through errors.As, never on the text.
type Error struct {
	Op         Op
	HTTPStatus int    // 0 when no answer arrived
	Code       Code   // SNAP responseCode, "" when no answer arrived
	Message    string // responseMessage
	Outcome    Outcome
	RetryAfter time.Duration // from a Retry-After header, if any
	Err        error         // the transport or decoding cause, if any
}

func (e *Error) Error() string {
	switch {
	case e.Code != "":
		return fmt.Sprintf("%s: DOKU answered %s %s (HTTP %d): %s", e.Op, e.Code, e.Message, e.HTTPStatus, e.Outcome)
	case e.HTTPStatus != 0:
		return fmt.Sprintf("%s: HTTP %d: %v: %s", e.Op, e.HTTPStatus, e.Err, e.Outcome)
	default:
		return fmt.Sprintf("%s: %v: %s", e.Op, e.Err, e.Outcome)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Unknown reports whether the call may have taken effect: ask before
// resending.
func (e *Error) Unknown() bool { return e.Outcome == Unknown }

// Retryable reports whether the same call may simply be sent again later.
func (e *Error) Retryable() bool { return e.Outcome == RetryLater }

// Permanent reports whether DOKU refused the call for good.
func (e *Error) Permanent() bool { return e.Outcome == Failed }

// OutcomeOf classifies the error of a Client method: nil is Succeeded, an
// *Error carries its outcome, and any other error (the request could not be
// built, so nothing was sent) is RetryLater.
func OutcomeOf(err error) Outcome {
	if err == nil {
		return Succeeded
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Outcome
	}
	return RetryLater
}

// Classify maps a SNAP responseCode to an outcome.
// It is the one table of its kind: the sandbox and the reconciler agree
// with the client because they all ask it.
//
// A code that says the money may have moved, or may still move (an OTP
// sent to the customer, a bill already paid, a transaction already
// successful, a duplicate key), is Unknown: the caller asks DOKU by status
// inquiry before it concludes anything or sends anything new.
func Classify(code Code) Outcome {
	status, caseCode := code.HTTPStatus(), code.Case()
	switch {
	case status == 200:
		return Succeeded
	case status == 202:
		// Request In Progress: it may still take effect.
		return Unknown
	case status == 401:
		// A bad signature, unknown partner or expired token: refused before
		// processing, so nothing happened; fix the cause and send again.
		return RetryLater
	case status == 403:
		switch caseCode {
		case "04", "06":
			// Activity count limit; feature not allowed at this time (cut-off).
			return RetryLater
		case "13":
			// OTP Sent To Cardholder: the request is at the customer's
			// bank, waiting for an OTP; it may still be paid.
			return Unknown
		}
		return Failed
	case status == 409:
		// 00: this X-EXTERNAL-ID was used; 01: this partnerReferenceNo /
		// partnerRefundNo exists. Either way something happened before: ask.
		return Unknown
	case status == 429:
		return RetryLater
	case status >= 500:
		return Unknown
	case status == 404 && (caseCode == "18" || caseCode == "14"):
		// 18 Inconsistent Request: this key exists with other content.
		// 14 Paid Bill: what the request would pay is paid already,
		// perhaps by this very key.
		return Unknown
	case status == 400 && caseCode == "03":
		// Transaction Already Success: the transaction this request
		// would make exists and succeeded, perhaps under this very key.
		return Unknown
	case status >= 400:
		return Failed
	}
	// Not a SNAP code at all.
	return Unknown
}

// NotFound reports whether DOKU answered "Transaction Not Found" (case
// 01 of HTTP 404): the one answer that says DOKU has no transaction under
// the key asked about. Any other 404 (invalid routing, merchant or
// terminal, a cancelled transaction) says nothing about whether the
// transaction exists, and must not be read as "never sent".
func (c Code) NotFound() bool { return c.HTTPStatus() == 404 && c.Case() == "01" }

// NotFound reports whether err is DOKU's answer that it has no
// transaction under the key asked about (Code.NotFound).
func NotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code.NotFound()
}
