doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "batch" {
  for_each = { for r in csvdecode(file("csv_missing_column.csv")) : r.order_id => r }
  payment  = each.value.payment_ref
  amount   = each.value.amount
  reason   = each.value.reason # ERROR: Unsupported attribute
}
