# Bindings that must be removed. Deleting a binding block never unbinds
# anyone (principle 1): an unbind block is the explicit, reviewed request.

unbind "bob" {
  customer_id = "cust-002"
  reason      = "account closed, ticket 8812"
}

unbind "closed_accounts" {
  for_each    = toset(["cust-020", "cust-021"])
  customer_id = each.key
  reason      = "closed in the November clean-up"
}
