# A finance batch: one refund per CSV row, made at 02:00 on the 30th.

variable "batch_file" {
  default = "refunds.csv"
}

refund "batch_nov" {
  for_each   = { for r in csvdecode(file(var.batch_file)) : r.order_id => r }
  payment    = each.value.payment_ref
  amount     = each.value.amount
  reason     = each.value.reason
  not_before = "2026-11-30T02:00:00+07:00"
}
