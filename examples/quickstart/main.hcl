# The quickstart: three refunds and a CSV batch, run against the embedded
# sandbox (see README.md). The doku block comes from the sandbox: with
# -sandbox=sandbox, ddctl starts it and loads sandbox/doku.hcl.

settings {
  timezone         = "Asia/Jakarta"
  state            = "ddctl.db"
  reference_prefix = "QUICKSTART"
}

refund "order_1001" {
  payment = "INV-1001" # the original payment's partnerReferenceNo
  reason  = "item damaged"
  # no amount: the full paid amount (Allo refunds are full-only)
}

refund "order_1002" {
  payment = "INV-1002"
  amount  = 75000
  reason  = "order cancelled"
}

refund "order_1003" {
  payment = "INV-1003"
  amount  = "120000.50"
  reason  = "duplicate charge"
}

# One refund per CSV row, keyed by order id: refund.batch["ORD-7"] and so on.
refund "batch" {
  for_each = { for r in csvdecode(file("refunds.csv")) : r.order_id => r }
  payment  = each.value.payment_ref
  amount   = each.value.amount
  reason   = each.value.reason
}
