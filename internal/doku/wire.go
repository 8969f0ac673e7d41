package doku

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ddctl/ddctl/internal/money"
)

// The wire types carry DOKU's exact JSON names. Unknown
// fields in answers are ignored, as DOKU may add fields at any time (docs/doku.md#wire-format).

// Amount is SNAP's amount object: {"value": "25000.00", "currency": "IDR"}.
type Amount struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

// NewAmount is the wire form of a.
func NewAmount(a money.Amount) Amount {
	return Amount{Value: a.Value(), Currency: money.Currency}
}

// Money parses the amount, refusing any currency but IDR.
func (a Amount) Money() (money.Amount, error) {
	if a.Currency != money.Currency {
		return 0, fmt.Errorf("currency %q: want %s", a.Currency, money.Currency)
	}
	return money.ParseWire(a.Value)
}

// Code is a SNAP responseCode: 3-digit HTTP status, 2-digit service code,
// 2-digit case code. It decodes from a JSON string or number (docs/doku.md#response-codes).
type Code string

// UnmarshalJSON accepts "2005800" and 2005800.
func (c *Code) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Code(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("responseCode: %w", err)
	}
	*c = Code(n.String())
	return nil
}

// HTTPStatus is the code's first three digits, or 0.
func (c Code) HTTPStatus() int {
	if len(c) != 7 {
		return 0
	}
	n, err := strconv.Atoi(string(c[:3]))
	if err != nil {
		return 0
	}
	return n
}

// Service is the code's two service digits.
func (c Code) Service() string {
	if len(c) != 7 {
		return ""
	}
	return string(c[3:5])
}

// Case is the code's two case digits.
func (c Code) Case() string {
	if len(c) != 7 {
		return ""
	}
	return string(c[5:])
}

// MakeCode builds a responseCode from its parts.
func MakeCode(httpStatus int, service, caseCode string) Code {
	return Code(fmt.Sprintf("%03d%s%s", httpStatus, service, caseCode))
}

// Result is the part every answer has.
type Result struct {
	ResponseCode    Code   `json:"responseCode"`
	ResponseMessage string `json:"responseMessage"`
}

func (r *Result) result() *Result { return r }

// ChannelInfo is the additionalInfo object that only names the channel.
type ChannelInfo struct {
	Channel string `json:"channel"`
}

// Seconds decodes a lifetime given as a JSON number or string of seconds
// (SDKs disagree on the type, docs/doku.md#b2b-token).
type Seconds int64

// UnmarshalJSON accepts 900 and "900".
func (s *Seconds) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(bytes.TrimSpace(b), `"`)
	if len(b) == 0 {
		*s = 0
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("expiresIn: %w", err)
	}
	*s = Seconds(n)
	return nil
}

// Duration is s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) * time.Second }

// TokenRequest is the body of a token request (docs/doku.md#b2b-token, docs/doku.md#b2b2c-token).
type TokenRequest struct {
	GrantType    string `json:"grantType"`
	AuthCode     string `json:"authCode,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
}

// TokenResponse is the answer to a B2B token request (docs/doku.md#b2b-token).
type TokenResponse struct {
	Result
	AccessToken string  `json:"accessToken"`
	TokenType   string  `json:"tokenType"`
	ExpiresIn   Seconds `json:"expiresIn"`
}

// RefundRequest is the body of a refund (docs/doku.md#refund).
type RefundRequest struct {
	OriginalPartnerReferenceNo string      `json:"originalPartnerReferenceNo"`
	OriginalExternalID         string      `json:"originalExternalId,omitempty"`
	RefundAmount               Amount      `json:"refundAmount"`
	Reason                     string      `json:"reason,omitempty"`
	PartnerRefundNo            string      `json:"partnerRefundNo"`
	AdditionalInfo             ChannelInfo `json:"additionalInfo"`
}

// RefundResponse is the answer to a refund (docs/doku.md#refund).
type RefundResponse struct {
	Result
	RefundAmount               Amount `json:"refundAmount"`
	OriginalPartnerReferenceNo string `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        string `json:"originalReferenceNo"`
	RefundNo                   string `json:"refundNo"`
	PartnerRefundNo            string `json:"partnerRefundNo"`
	RefundTime                 string `json:"refundTime"`
}

// StatusRequest is the body of a payment status inquiry (docs/doku.md#status-inquiry).
type StatusRequest struct {
	OriginalPartnerReferenceNo string      `json:"originalPartnerReferenceNo,omitempty"`
	OriginalReferenceNo        string      `json:"originalReferenceNo,omitempty"`
	OriginalExternalID         string      `json:"originalExternalId,omitempty"`
	ServiceCode                string      `json:"serviceCode"`
	TransactionDate            string      `json:"transactionDate,omitempty"`
	Amount                     *Amount     `json:"amount,omitempty"`
	AdditionalInfo             ChannelInfo `json:"additionalInfo"`
}

// Transaction statuses of a status inquiry or notification (docs/doku.md#status-inquiry).
const (
	TxSuccess   = "00"
	TxInitiated = "01"
	TxPaying    = "02"
	TxPending   = "03"
	TxRefunded  = "04"
	TxCanceled  = "05"
	TxFailed    = "06"
	TxNotFound  = "07"
)

// StatusResponse is the answer to a payment status inquiry (docs/doku.md#status-inquiry).
type StatusResponse struct {
	Result
	OriginalPartnerReferenceNo string          `json:"originalPartnerReferenceNo"`
	OriginalReferenceNo        string          `json:"originalReferenceNo"`
	OriginalExternalID         string          `json:"originalExternalId,omitempty"`
	ServiceCode                string          `json:"serviceCode"`
	LatestTransactionStatus    string          `json:"latestTransactionStatus"`
	TransactionStatusDesc      string          `json:"transactionStatusDesc"`
	OriginalResponseCode       string          `json:"originalResponseCode,omitempty"`
	OriginalResponseMessage    string          `json:"originalResponseMessage,omitempty"`
	ApprovalCode               string          `json:"approvalCode,omitempty"`
	TransAmount                Amount          `json:"transAmount,omitzero"` // optional in every SDK model
	FeeAmount                  *Amount         `json:"feeAmount,omitempty"`
	PaidTime                   string          `json:"paidTime,omitempty"`
	RefundHistory              []RefundHistory `json:"refundHistory,omitempty"`
	AdditionalInfo             *ChannelInfo    `json:"additionalInfo,omitempty"`
}

// RefundHistory is one refund of a payment in a status answer. Its
// partnerReferenceNo is the refund's partnerRefundNo (docs/doku.md#status-inquiry).
type RefundHistory struct {
	RefundNo           string `json:"refundNo"`
	PartnerReferenceNo string `json:"partnerReferenceNo"`
	RefundAmount       Amount `json:"refundAmount"`
	RefundStatus       string `json:"refundStatus"`
	RefundDate         string `json:"refundDate,omitempty"`
	Reason             string `json:"reason,omitempty"`
}

// Marshal encodes v the way it is hashed and sent: compact, without HTML
// escaping and without a trailing newline (docs/doku.md#symmetric-signature).
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// B2B2CTokenResponse is the answer to a customer token request (docs/doku.md#b2b2c-token).
type B2B2CTokenResponse struct {
	Result
	AccessToken            string `json:"accessToken"`
	TokenType              string `json:"tokenType"`
	AccessTokenExpiryTime  string `json:"accessTokenExpiryTime"`
	RefreshToken           string `json:"refreshToken,omitempty"`
	RefreshTokenExpiryTime string `json:"refreshTokenExpiryTime,omitempty"`
}

// BindingInfo is the additionalInfo of an account binding request (docs/doku.md#account-binding).
type BindingInfo struct {
	Channel                string `json:"channel"`
	CustIDMerchant         string `json:"custIdMerchant"`
	CustomerName           string `json:"customerName,omitempty"`
	Email                  string `json:"email,omitempty"`
	SuccessRegistrationURL string `json:"successRegistrationUrl"`
	FailedRegistrationURL  string `json:"failedRegistrationUrl"`
	DeviceModel            string `json:"deviceModel"`
	OSType                 string `json:"osType"`
	ChannelID              string `json:"channelId"`
}

// BindingRequest is the body of an account binding (docs/doku.md#account-binding).
type BindingRequest struct {
	PhoneNo        string      `json:"phoneNo"`
	AdditionalInfo BindingInfo `json:"additionalInfo"`
}

// BindingResponse is the answer to an account binding (docs/doku.md#account-binding). The status
// field's name is DISAGREE (status vs accountStatus): both are read.
type BindingResponse struct {
	Result
	ReferenceNo    string `json:"referenceNo"`
	RedirectURL    string `json:"redirectUrl"`
	AdditionalInfo struct {
		CustIDMerchant string `json:"custIdMerchant"`
		Status         string `json:"status,omitempty"`
		AccountStatus  string `json:"accountStatus,omitempty"`
		AuthCode       string `json:"authCode"`
	} `json:"additionalInfo"`
}

// BalanceRequest is the body of a balance inquiry (docs/doku.md#balance-inquiry).
type BalanceRequest struct {
	AdditionalInfo ChannelInfo `json:"additionalInfo"`
}

// AccountInfo is one balance of a balance answer (docs/doku.md#balance-inquiry).
type AccountInfo struct {
	BalanceType string  `json:"balanceType"`
	Amount      Amount  `json:"amount"`
	FlatAmount  *Amount `json:"flatAmount,omitempty"`
	HoldAmount  *Amount `json:"holdAmount,omitempty"`
}

// BalanceResponse is the answer to a balance inquiry (docs/doku.md#balance-inquiry).
type BalanceResponse struct {
	Result
	AccountInfos []AccountInfo `json:"accountInfos"`
}

// PayOption is one payOptionDetails entry of a payment (docs/doku.md#payment).
type PayOption struct {
	PayMethod   string `json:"payMethod"`
	TransAmount Amount `json:"transAmount"`
	FeeAmount   Amount `json:"feeAmount"`
}

// LineItem is one line of a payment (docs/doku.md#payment). Quantity is sent as a string
// (DISAGREE: some SDKs send a number; the sandbox accepts both).
type LineItem struct {
	Name     string          `json:"name"`
	Price    string          `json:"price"`
	Quantity json.RawMessage `json:"quantity"`
}

// PaymentInfo is the additionalInfo of a payment (docs/doku.md#payment).
type PaymentInfo struct {
	Channel           string     `json:"channel"`
	Remarks           string     `json:"remarks"`
	SuccessPaymentURL string     `json:"successPaymentUrl"`
	FailedPaymentURL  string     `json:"failedPaymentUrl"`
	LineItems         []LineItem `json:"lineItems"`
}

// PaymentRequest is the body of a host-to-host payment (docs/doku.md#payment).
type PaymentRequest struct {
	PartnerReferenceNo string      `json:"partnerReferenceNo"`
	Amount             Amount      `json:"amount"`
	PayOptionDetails   []PayOption `json:"payOptionDetails,omitempty"`
	AdditionalInfo     PaymentInfo `json:"additionalInfo"`
}

// PaymentResponse is the answer to a payment (docs/doku.md#payment): accepted, with the
// page where the customer confirms. The money moves only then.
type PaymentResponse struct {
	Result
	ReferenceNo        string `json:"referenceNo"`
	PartnerReferenceNo string `json:"partnerReferenceNo"`
	WebRedirectURL     string `json:"webRedirectUrl"`
}

// UnbindingRequest is the body of an account unbinding (docs/doku.md#account-unbinding): tokenId is
// the customer's B2B2C token.
type UnbindingRequest struct {
	TokenID        string      `json:"tokenId"`
	AdditionalInfo ChannelInfo `json:"additionalInfo"`
}

// UnbindingResponse is the answer to an account unbinding (docs/doku.md#account-unbinding).
type UnbindingResponse struct {
	Result
	ReferenceNo string `json:"referenceNo"`
}
