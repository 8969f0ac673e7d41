package doku

import (
	"errors"
	"time"
)

// This file holds ddctl's readings of DOKU's SNAP API, each named once so
// that a correction is a one-line change. Every entry names its source, a
// section of docs/doku.md, which in turn cites DOKU's pages or official
// SDKs. An entry DOKU's material does not settle says UNCONFIRMED, what
// ddctl does meanwhile, and what would settle it ("DOKU sandbox" below is
// DOKU's own sandbox, api-sandbox.doku.com, not ddctl's).

// Paths of the Allo Bank operations. Documented: docs/doku.md#endpoints
// (DOKU's Allo page and the Go SDK's commons/config.go).
const (
	PathTokenB2B   = "/authorization/v1/access-token/b2b"
	PathTokenB2B2C = "/authorization/v1/access-token/b2b2c"
	PathBinding    = "/direct-debit/core/v1/registration-account-binding"
	PathBalance    = "/direct-debit/core/v1/balance-inquiry"
	PathPayment    = "/direct-debit/core/v1/debit/payment-host-to-host"
	PathStatus     = "/orders/v1.0/debit/status"
	PathRefund     = "/direct-debit/core/v1/debit/refund"
	PathUnbinding  = "/direct-debit/core/v1/registration-account-unbinding"
)

// Base URLs of DOKU's environments. Documented:
// docs/doku.md#environments.
const (
	BaseURLSandbox    = "https://api-sandbox.doku.com"
	BaseURLProduction = "https://api.doku.com"
)

// Channel is the value of additionalInfo.channel on every Allo call.
// Documented: docs/doku.md#endpoints.
const Channel = "DIRECT_DEBIT_ALLO_SNAP"

// PaymentChannelID is the CHANNEL-ID header of a payment. UNCONFIRMED
// whether Allo requires it and which value it expects
// (docs/doku.md#headers); "DH" is the Go SDK's. Settled by a DOKU sandbox
// payment without the header, or DOKU support's answer. The sandbox's
// Config.PaymentNeedsChannelID makes it mandatory.
const PaymentChannelID = "DH"

// StatusServiceCode is sent as serviceCode in a status inquiry: every DOKU
// SDK accepts only "55"; SNAP's general convention is the original call's
// "54" (docs/doku.md#status-inquiry). That DOKU's production status
// inquiry serves Allo at all is UNCONFIRMED; settled by DOKU support's
// answer. The sandbox accepts both unless its Config.StatusServiceCode
// names one.
const StatusServiceCode = "55"

// Service codes, the middle two digits of a responseCode
// (docs/doku.md#endpoints, docs/doku.md#response-codes). 73 and 74 are on
// DOKU's token pages; the others follow SNAP's numbering as the SDKs'
// fixtures show. UNCONFIRMED for refund (58: the Go SDK's refund fixture
// answers 2000700) and notify (56); settled by a DOKU sandbox refund and a
// DOKU sandbox notification.
const (
	ServiceTokenB2B   = "73"
	ServiceTokenB2B2C = "74"
	ServiceBinding    = "07"
	ServiceUnbinding  = "09"
	ServiceBalance    = "11"
	ServicePayment    = "54"
	ServiceStatus     = "55"
	ServiceNotify     = "56"
	ServiceRefund     = "58"
)

// Case codes this package and the sandbox use for refunds DOKU does not
// document for Allo (docs/doku.md#refund). UNCONFIRMED; settled by a DOKU
// sandbox partial refund and a DOKU sandbox refund of an unpaid payment.
const (
	// CaseRefundAmount answers a refund whose amount breaks the refund policy
	// (full-only: the paid amount). UNCONFIRMED: 4045813 Invalid Amount.
	// The sandbox's Config.RefundAmountCase answers another.
	CaseRefundAmount = "13"
	// CaseRefundNotPermitted answers a refund of a payment that cannot be
	// refunded (not paid, already refunded). UNCONFIRMED: 4035815. The
	// sandbox's Config.RefundNotPermittedCase answers another.
	CaseRefundNotPermitted = "15"
)

// TokenRefreshMargin is how long before its expiry a cached token is
// replaced: the Go SDK caches the B2B token for expiresIn minus 10 s
// (docs/doku.md#token-lifetimes).
const TokenRefreshMargin = 10 * time.Second

// DefaultTokenLifetime is assumed when a token answer carries no usable
// expiry: DOKU states 900 s sessions for B2B and B2B2C tokens, and every
// SDK assumes 900 s (docs/doku.md#token-lifetimes). The format of a B2B2C
// answer's accessTokenExpiryTime is UNCONFIRMED (docs/doku.md#b2b2c-token);
// settled by a DOKU sandbox B2B2C exchange.
const DefaultTokenLifetime = 900 * time.Second

// ExternalIDZone bounds the day within which DOKU keeps X-EXTERNAL-ID
// unique. DOKU documents uniqueness "in the same day"; WIB or UTC is
// UNCONFIRMED (docs/doku.md#idempotency). WIB is DOKU's home zone; ddctl
// never reuses an id, so either reading sends the same. Settled by DOKU
// support's answer. The sandbox's Config.ExternalIDZone sets its own.
var ExternalIDZone = time.FixedZone("WIB", 7*3600)

// TimestampLayout formats X-TIMESTAMP: seconds and an explicit offset, in
// WIB as the Go SDK sends it. DOKU's token pages ask for UTC while their
// samples show +07:00: the zone is UNCONFIRMED (docs/doku.md#timestamps).
// Settled by a DOKU sandbox token request with a +07:00 timestamp.
const TimestampLayout = "2006-01-02T15:04:05-07:00"

// PendingStatuses are the latestTransactionStatus values that mean a payment
// has not reached a final state yet (docs/doku.md#status-inquiry). Which of
// 01/03 an Allo payment awaiting its customer shows is UNCONFIRMED; settled
// by a DOKU sandbox status inquiry on a payment whose page was not opened.
var pendingStatuses = map[string]bool{"01": true, "02": true, "03": true}

// Readings that are a convention of ddctl's code rather than a value: each
// is named here so that comments at the places that depend on it can say
// which reading they rely on. Their values only describe them.
const (
	// BindingActivation (docs/doku.md#binding): DOKU documents no way for
	// the merchant to learn that a customer confirmed a binding (no binding
	// notification, no binding status call for Allo, undocumented values
	// in the binding answer's status field). ddctl takes a pending binding
	// as active once its authCode buys a customer token (reconcile's
	// planBindings refresh, ddctl import), a convention of its own
	// sandbox. The SDKs exchange the authCode only for customer calls
	// after binding (docs/doku.md#b2b2c-token); DOKU does not say the
	// exchange is refused before the customer confirms. UNCONFIRMED;
	// settled by: at DOKU's sandbox, exchanging a binding's authCode
	// before and after the customer confirms, noting each answer's HTTP
	// status and code.
	BindingActivation = "a pending binding is active once its authCode buys a customer token"

	// PartnerReferenceNoLength (docs/doku.md#payment): ddctl's
	// partnerReferenceNo and partnerRefundNo are 32 to 56 characters
	// (reconcile.IdempotencyKey) and ddctl's sandbox requires 32-64, per
	// the Node SDK. DOKU's own Allo notification sample has a
	// 14-character partnerReferenceNo and the Go SDK's README documents
	// 9-16: UNCONFIRMED. Settled by DOKU sandbox payments with a 14- and a
	// 40-character partnerReferenceNo.
	PartnerReferenceNoLength = "partnerReferenceNo and partnerRefundNo of 32 to 64 characters"
)

// BindingGone reports whether err, from a customer-token exchange, is
// taken to mean the binding is not active, not confirmed or unbound
// (docs/doku.md#binding): DOKU refused the exchange with HTTP 403 (ddctl's
// sandbox answers 4037418, Inactive Card/Account/Customer). This is a
// convention of ddctl's sandbox; DOKU may answer 401 (Invalid Customer
// Token) or 404 (Invalid Card/Account/Customer) instead. It settles an
// unbinding whose answer was lost, and makes Unbind ask before concluding.
// UNCONFIRMED; settled by: at DOKU's sandbox, exchanging a binding's
// authCode after an unbinding, noting the answer; or DOKU support's answer
// on how a merchant learns a binding's state.
func BindingGone(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code.HTTPStatus() == 403
}

// Notifications (docs/doku.md#notifications).

// DefaultNotificationMode is how notifications are verified unless
// configured otherwise: symmetric, HMAC-SHA512 with the client secret, as
// DOKU's own documents say. Its SNAP signature page has the merchant verify
// X-Signature when DOKU hits the merchant's endpoints (HTTP notification)
// and points to the symmetric signature for it:
// https://developers.doku.com/get-started-with-doku-api/signature-component/snap
// and its SNAP notification sample, which the Direct Debit section shares,
// gives X-SIGNATURE as "HMAC_SHA512 (clientSecret, stringToSign)":
// https://developers.doku.com/get-started-with-doku-api/notification/http-notification-sample-for-snap
// The SDKs check the token alone, and DOKU's sample signature has the
// length of an RSA-2048 one (what made asymmetric the earlier default), so
// ModeAsymmetric and ModeTokenOnly stay available, each by configuration,
// never as a fallback.
const DefaultNotificationMode = ModeSymmetric

// DefaultNotificationToken is which bearer token a notification must carry
// unless configured otherwise: one the receiver issued. DOKU's SNAP
// notification sample gives Authorization as the access token "obtained
// from Get B2B Token API", the merchant's token endpoint that DOKU calls
// before it notifies:
// https://developers.doku.com/get-started-with-doku-api/notification/http-notification-sample-for-snap
const DefaultNotificationToken = TokenIssued

// DefaultMaxSkew is how far X-TIMESTAMP may be from the receiver's clock,
// either way, on a token request or a notification. DOKU's accepted skew is
// UNCONFIRMED (docs/doku.md#timestamps); five minutes is the usual choice.
// It assumes DOKU's retries (docs/doku.md#notification-retries, up to 12 h
// later) carry a fresh X-TIMESTAMP and signature; re-sent verbatim, they
// would be refused as stale. Settled by an unanswered notification at
// DOKU's sandbox and the headers of its retry.
const DefaultMaxSkew = 5 * time.Minute

// DefaultReceiverTokenLifetime is how long a token the receiver issues to
// DOKU is valid. The merchant chooses; the SDKs issue 900 s tokens
// (docs/doku.md#merchant-token-endpoint), the lifetime of DOKU's own
// (docs/doku.md#token-lifetimes).
const DefaultReceiverTokenLifetime = DefaultTokenLifetime

// Answers of the merchant's token endpoint
// (docs/doku.md#merchant-token-endpoint) and notification endpoint
// (docs/doku.md#notification-answer). 2007300, 4017300 (bad signature) and
// 2005600 come from the Go SDK; the others apply SNAP's case table
// (docs/doku.md#response-codes) to services 73 and 56 and are UNCONFIRMED.
// DOKU acts on the HTTP status: any 2xx acknowledges, anything else is
// retried (docs/doku.md#notification-retries); whether it reads the body is
// UNCONFIRMED, settled by DOKU support's answer.
const (
	CodeTokenIssued       Code = "2007300"
	CodeTokenUnauthorized Code = "4017300" // bad signature, unknown client, stale X-TIMESTAMP
	CodeTokenBadRequest   Code = "4007300" // body not JSON
	CodeTokenBadFormat    Code = "4007301" // X-TIMESTAMP, grantType
	CodeTokenMissingField Code = "4007302" // a header or grantType is absent
	CodeTokenGeneralError Code = "5007300" // the token could not be signed

	CodeNotifyAck          Code = "2005600"
	CodeNotifyUnauthorized Code = "4015600" // bad or absent signature, wrong partner, stale X-TIMESTAMP
	CodeNotifyInvalidToken Code = "4015601" // bearer token absent, not ours, expired (the SDKs send 5005600)
	CodeNotifyBadRequest   Code = "4005600" // body not a JSON object
	CodeNotifyBadFormat    Code = "4005601" // X-TIMESTAMP or a body field malformed
	CodeNotifyMissingField Code = "4005602" // a header or body field is absent
	CodeNotifyConflict     Code = "4095600" // X-EXTERNAL-ID already used today by another notification
	CodeTokenTooMany       Code = "4297300" // the merchant's token endpoint asked too often
)
