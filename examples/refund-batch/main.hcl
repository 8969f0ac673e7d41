# A finance batch: one refund per CSV row, made at 02:00 on the 30th.

variable "batch_file" {
  default = "refunds.csv"
}

# The customers who paid. DOKU takes a refund only with the payer's
# customer token: each row names its customer, whose binding gives it.
binding "customer" {
  for_each    = { for c in csvdecode(file("customers.csv")) : c.customer_id => c }
  customer_id = each.key
  phone       = each.value.phone
  success_url = "https://shop.example/allo/bound"
  failed_url  = "https://shop.example/allo/failed"
}

refund "batch_nov" {
  for_each   = { for r in csvdecode(file(var.batch_file)) : r.order_id => r }
  payment    = each.value.payment_ref
  binding    = binding.customer[each.value.customer_id]
  amount     = each.value.amount
  reason     = each.value.reason
  not_before = "2026-11-30T02:00:00+07:00"
}
