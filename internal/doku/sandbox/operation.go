package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
)

// status answers a payment status inquiry (docs/doku.md#status-inquiry).
func (s *Server) status(ctx context.Context, tx *sqlx.Tx, c *call) answer {
	op := c.op
	var req doku.StatusRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return badBody(op, err)
	}
	switch {
	case req.ServiceCode == "":
		return fail(op, 400, "02", "Invalid Mandatory Field {serviceCode}")
	case req.ServiceCode != doku.ServiceStatus && req.ServiceCode != doku.ServicePayment,
		s.cfg.StatusServiceCode != "" && req.ServiceCode != s.cfg.StatusServiceCode:
		// DOKU's SDKs send 55, SNAP's convention is 54: accept both unless
		// Config.StatusServiceCode names one (docs/doku.md#status-inquiry).
		return fail(op, 400, "01", "Invalid Field Format {serviceCode}")
	case req.OriginalPartnerReferenceNo == "" && req.OriginalReferenceNo == "":
		return fail(op, 400, "02", "Invalid Mandatory Field {originalPartnerReferenceNo}")
	case len(req.OriginalPartnerReferenceNo) > 64:
		return fail(op, 400, "01", "Invalid Field Format {originalPartnerReferenceNo}")
	case req.AdditionalInfo.Channel != doku.Channel:
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.channel}")
	}
	p, err := getPayment(ctx, tx, req.OriginalPartnerReferenceNo, req.OriginalReferenceNo)
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	if p == nil {
		return fail(op, 404, "01", "Transaction Not Found")
	}
	refunds, err := paymentRefunds(ctx, tx, p.PartnerReferenceNo)
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	resp := doku.StatusResponse{
		Result:                     doku.Result{ResponseCode: doku.MakeCode(200, op.Service(), "00"), ResponseMessage: "Successful"},
		OriginalPartnerReferenceNo: p.PartnerReferenceNo,
		OriginalReferenceNo:        p.ReferenceNo,
		OriginalExternalID:         p.ExternalID,
		ServiceCode:                req.ServiceCode,
		LatestTransactionStatus:    p.Status,
		TransactionStatusDesc:      statusDesc(p.Status),
		OriginalResponseCode:       string(doku.MakeCode(200, doku.ServicePayment, "00")),
		OriginalResponseMessage:    "Successful",
		TransAmount:                doku.NewAmount(money.Amount(p.Amount)),
		FeeAmount:                  &doku.Amount{Value: "0.00", Currency: money.Currency},
		PaidTime:                   p.PaidTime,
		AdditionalInfo:             &doku.ChannelInfo{Channel: doku.Channel},
	}
	if s.cfg.StatusWithoutAmount {
		resp.TransAmount = doku.Amount{}
	}
	for _, r := range refunds {
		resp.RefundHistory = append(resp.RefundHistory, doku.RefundHistory{
			RefundNo: r.RefundNo, PartnerReferenceNo: r.PartnerRefundNo,
			RefundAmount: doku.NewAmount(money.Amount(r.Amount)), RefundStatus: doku.TxSuccess,
			RefundDate: r.RefundTime, Reason: r.Reason,
		})
	}
	return answer{code: resp.ResponseCode, body: resp}
}

func statusDesc(st string) string {
	switch st {
	case doku.TxSuccess:
		return "Success"
	case doku.TxInitiated:
		return "Initiated"
	case doku.TxPaying:
		return "Paying"
	case doku.TxPending:
		return "Pending"
	case doku.TxRefunded:
		return "Refunded"
	case doku.TxCanceled:
		return "Canceled"
	case doku.TxFailed:
		return "Failed"
	}
	return "Not Found"
}

// refund refunds a paid payment (docs/doku.md#refund), under the configured refund policy.
func (s *Server) refund(ctx context.Context, tx *sqlx.Tx, c *call) answer {
	op := c.op
	var req doku.RefundRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return badBody(op, err)
	}
	if req.PartnerRefundNo != "" {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM refunds WHERE partner_refund_no = ?`, req.PartnerRefundNo); err != nil {
			return fail(op, 500, "01", "Internal Server Error")
		}
		if n > 0 {
			return fail(op, 409, "01", "Duplicate partnerRefundNo")
		}
	}
	switch {
	case req.OriginalPartnerReferenceNo == "":
		return fail(op, 400, "02", "Invalid Mandatory Field {originalPartnerReferenceNo}")
	case len(req.OriginalPartnerReferenceNo) > 64:
		return fail(op, 400, "01", "Invalid Field Format {originalPartnerReferenceNo}")
	case req.PartnerRefundNo == "":
		return fail(op, 400, "02", "Invalid Mandatory Field {partnerRefundNo}")
	case len(req.PartnerRefundNo) < 32 || len(req.PartnerRefundNo) > 64:
		return fail(op, 400, "01", "Invalid Field Format {partnerRefundNo}")
	case req.RefundAmount.Value == "":
		return fail(op, 400, "02", "Invalid Mandatory Field {refundAmount.value}")
	case req.RefundAmount.Currency == "":
		return fail(op, 400, "02", "Invalid Mandatory Field {refundAmount.currency}")
	case len(req.OriginalExternalID) > 36:
		return fail(op, 400, "01", "Invalid Field Format {originalExternalId}")
	case len(req.Reason) > 255:
		return fail(op, 400, "01", "Invalid Field Format {reason}")
	case req.AdditionalInfo.Channel == "":
		return fail(op, 400, "02", "Invalid Mandatory Field {additionalInfo.channel}")
	case req.AdditionalInfo.Channel != doku.Channel:
		return fail(op, 400, "01", "Invalid Field Format {additionalInfo.channel}")
	}
	amount, err := req.RefundAmount.Money()
	if err != nil {
		return fail(op, 400, "01", "Invalid Field Format {refundAmount}")
	}
	if amount <= 0 {
		return fail(op, 404, s.cfg.RefundAmountCase, "Invalid Amount")
	}
	p, err := getPayment(ctx, tx, req.OriginalPartnerReferenceNo, "")
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	if p == nil {
		return fail(op, 404, "01", "Transaction Not Found")
	}
	if p.Status != doku.TxSuccess && p.Status != doku.TxRefunded {
		return fail(op, 403, s.cfg.RefundNotPermittedCase, "Transaction Not Permitted. Payment is not paid")
	}
	prior, err := paymentRefunds(ctx, tx, p.PartnerReferenceNo)
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	var refunded int64
	for _, r := range prior {
		refunded += r.Amount
	}
	switch s.cfg.RefundPolicy {
	case RefundFull:
		if len(prior) > 0 {
			return fail(op, 403, s.cfg.RefundNotPermittedCase, "Transaction Not Permitted. Payment already refunded")
		}
		if int64(amount) != p.Amount {
			return fail(op, 404, s.cfg.RefundAmountCase, "Invalid Amount. Only full refunds are supported")
		}
	case RefundPartial:
		if int64(amount) > p.Amount-refunded {
			return fail(op, 404, s.cfg.RefundAmountCase, "Invalid Amount. Exceeds the refundable amount")
		}
	}
	n, err := nextNumber(ctx, tx, "refund_no")
	if err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	r := Refund{
		PartnerRefundNo:    req.PartnerRefundNo,
		RefundNo:           fmt.Sprintf("RF-%010d", n),
		PartnerReferenceNo: p.PartnerReferenceNo,
		Amount:             int64(amount),
		Reason:             req.Reason,
		RefundTime:         c.now.In(doku.ExternalIDZone).Format(time.RFC3339Nano),
	}
	if _, err := tx.NamedExecContext(ctx, `INSERT INTO refunds VALUES (:partner_refund_no, :refund_no,
		:partner_reference_no, :amount, :reason, :refund_time)`, r); err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	if c.bindingID != 0 {
		// A customer token, when sent, must be the payer's (docs/doku.md#refund).
		var b Binding
		if err := tx.GetContext(ctx, &b, `SELECT * FROM bindings WHERE id = ?`, c.bindingID); err != nil || b.Phone != p.Phone {
			return fail(op, 401, "02", "Invalid Customer Token. Not the payer's")
		}
	}
	// The money goes back to the customer's account.
	if _, err := tx.ExecContext(ctx, `UPDATE customers SET balance = balance + ? WHERE phone = ?`, int64(amount), p.Phone); err != nil {
		return fail(op, 500, "01", "Internal Server Error")
	}
	if refunded+int64(amount) == p.Amount {
		if _, err := tx.ExecContext(ctx, `UPDATE payments SET status = ? WHERE partner_reference_no = ?`,
			doku.TxRefunded, p.PartnerReferenceNo); err != nil {
			return fail(op, 500, "01", "Internal Server Error")
		}
	}
	resp := doku.RefundResponse{
		Result:                     doku.Result{ResponseCode: doku.Code(s.cfg.RefundSuccessCode), ResponseMessage: "Successful"},
		RefundAmount:               req.RefundAmount,
		OriginalPartnerReferenceNo: p.PartnerReferenceNo,
		OriginalReferenceNo:        p.ReferenceNo,
		RefundNo:                   r.RefundNo,
		PartnerRefundNo:            r.PartnerRefundNo,
		RefundTime:                 s.stamp(c.now),
	}
	return answer{code: resp.ResponseCode, body: resp}
}

// badBody answers a body that does not decode: a field of the wrong type
// is named (400xx01), anything else is a bad request (400xx00).
func badBody(op doku.Op, err error) answer {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fail(op, 400, "01", "Invalid Field Format {"+te.Field+"}")
	}
	return fail(op, 400, "00", "Bad Request")
}
