package doku

import "time"

// Everything in this file is a reading of DOKU's SNAP API that DOKU's
// public material does not settle (unconfirmed, or where its documents and
// SDKs disagree). Each
// is named here once, so that a correction is a one-line change.

// Paths of the Allo Bank operations.
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

// Base URLs of DOKU's environments.
const (
	BaseURLSandbox    = "https://api-sandbox.doku.com"
	BaseURLProduction = "https://api.doku.com"
)

// Channel is the value of additionalInfo.channel on every Allo call.
const Channel = "DIRECT_DEBIT_ALLO_SNAP"

// PaymentChannelID is the CHANNEL-ID header of a payment: whether Allo
// requires it and which value it expects is UNCONFIRMED; "DH" is the Go
// SDK's (§6).
const PaymentChannelID = "DH"

// StatusServiceCode is sent as serviceCode in a status inquiry: every DOKU
// SDK sends "55", the generic SNAP convention "54" (DISAGREE, §7.5).
const StatusServiceCode = "55"

// Service codes, the middle two digits of a responseCode (§9).
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

// Case codes this package and the sandbox use for conditions whose code
// DOKU does not document for Allo (§7.6, §9.3).
const (
	// CaseRefundAmount answers a refund whose amount breaks the refund policy
	// (full-only: the paid amount). UNCONFIRMED: 4045813 Invalid Amount.
	CaseRefundAmount = "13"
	// CaseRefundNotPermitted answers a refund of a payment that cannot be
	// refunded (not paid, already refunded). UNCONFIRMED: 4035815.
	CaseRefundNotPermitted = "15"
)

// TokenRefreshMargin is how long before its expiry a cached token is
// replaced (the SDKs refresh ~10 s early, §5.1).
const TokenRefreshMargin = 10 * time.Second

// DefaultTokenLifetime is assumed when a token answer carries no usable
// expiry (every SDK assumes 900 s, §5.1).
const DefaultTokenLifetime = 900 * time.Second

// ExternalIDZone bounds the day within which DOKU keeps X-EXTERNAL-ID
// unique: WIB or UTC is UNCONFIRMED (§3); WIB is DOKU's home zone.
var ExternalIDZone = time.FixedZone("WIB", 7*3600)

// TimestampLayout formats X-TIMESTAMP: seconds and an explicit offset, in
// WIB as the Go SDK sends it (the zone is DISAGREE, §3).
const TimestampLayout = "2006-01-02T15:04:05-07:00"

// PendingStatuses are the latestTransactionStatus values that mean a payment
// has not reached a final state yet (§7.5; which of 01/03 Allo uses is
// UNCONFIRMED).
var pendingStatuses = map[string]bool{"01": true, "02": true, "03": true}

// Notifications (§8).

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
// UNCONFIRMED (§3, §14 item 1); five minutes is the usual choice. It
// assumes DOKU's retries (§8.5, up to 12 h later) carry a fresh X-TIMESTAMP
// and signature; re-sent verbatim, they would be refused as stale.
const DefaultMaxSkew = 5 * time.Minute

// DefaultReceiverTokenLifetime is how long a token the receiver issues to
// DOKU is valid. The merchant chooses; the SDKs issue 900 s tokens (§8.1),
// the lifetime of DOKU's own (§5.1).
const DefaultReceiverTokenLifetime = DefaultTokenLifetime

// Answers of the merchant's token endpoint (§8.1) and notification endpoint
// (§8.4). 2007300, 4017300 (bad signature) and 2005600 come from the SDKs;
// the others apply SNAP's case table (§9.2) to services 73 and 56 and are
// UNCONFIRMED. DOKU appears to act on the HTTP status alone (§8.4): any 2xx
// acknowledges, anything else is retried (§8.5).
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
