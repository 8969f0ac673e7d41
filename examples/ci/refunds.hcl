# The refunds under review. A pull request that changes this directory
# gets the plan as a comment; merging it applies exactly that plan.

refund "order_1001" {
  payment = "INV-1001" # the original payment's partnerReferenceNo
  reason  = "item damaged"
}

refund "order_1002" {
  payment = "INV-1002"
  reason  = "order cancelled"
}

# One refund per CSV row, keyed by order id: refund.batch["ORD-7"].
refund "batch" {
  for_each = { for r in csvdecode(file("refunds.csv")) : r.order_id => r }
  payment  = each.value.payment_ref
  amount   = each.value.amount
  reason   = each.value.reason
}
