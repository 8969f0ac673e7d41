# The quickstart: three refunds and a CSV batch, run against the embedded
# sandbox (see README.md). The doku block comes from the sandbox: with
# -sandbox=sandbox, ddctl starts it and loads sandbox/doku.hcl.

settings {
  timezone         = "Asia/Jakarta"
  state            = "ddctl.db"
  reference_prefix = "QUICKSTART"
}

# The customers who paid. DOKU takes a refund only with the payer's
# customer token, so each refund names the payer's binding. The first
# apply asks DOKU to bind each account (in the sandbox, its customers
# approve at once); the refunds wait for that, and the next apply makes
# them. An account your own systems bound already is adopted instead:
# ddctl import binding.customer["cust-001"] cust-001 < authcode.txt
binding "customer" {
  for_each    = { for c in csvdecode(file("customers.csv")) : c.customer_id => c }
  customer_id = each.key
  phone       = each.value.phone
  success_url = "https://shop.example/allo/bound"
  failed_url  = "https://shop.example/allo/failed"
}

refund "order_1001" {
  payment = "INV-1001" # the original payment's partnerReferenceNo
  binding = binding.customer["cust-001"]
  reason  = "item damaged"
  # no amount: the full paid amount (Allo refunds are full-only)
}

refund "order_1002" {
  payment = "INV-1002"
  binding = binding.customer["cust-002"]
  amount  = 75000
  reason  = "order cancelled"
}

refund "order_1003" {
  payment = "INV-1003"
  binding = binding.customer["cust-003"]
  amount  = "120000.50"
  reason  = "duplicate charge"
}

# One refund per CSV row, keyed by order id: refund.batch["ORD-7"] and so on.
refund "batch" {
  for_each = { for r in csvdecode(file("refunds.csv")) : r.order_id => r }
  payment  = each.value.payment_ref
  binding  = binding.customer[each.value.customer_id]
  amount   = each.value.amount
  reason   = each.value.reason
}
