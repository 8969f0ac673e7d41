# The refunds under review. A pull request that changes this directory
# gets the plan as a comment; merging it applies exactly that plan.

# The customers who pay, their Allo accounts bound by the shop's own
# systems and adopted once on the runner, with the state key set:
#   ddctl import 'binding.customer["cust-001"]' cust-001 < authcode
# DOKU takes a refund only with the payer's customer token, so every
# refund names the payer's binding.
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
}

refund "order_1002" {
  payment = "INV-1002"
  binding = binding.customer["cust-002"]
  reason  = "order cancelled"
}

# One refund per CSV row, keyed by order id: refund.batch["ORD-7"].
refund "batch" {
  for_each = { for r in csvdecode(file("refunds.csv")) : r.order_id => r }
  payment  = each.value.payment_ref
  binding  = binding.customer[each.value.customer_id]
  amount   = each.value.amount
  reason   = each.value.reason
}
