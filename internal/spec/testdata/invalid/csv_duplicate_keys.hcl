doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

locals {
  rows = csvdecode(file("csv_duplicate_keys.csv"))
}

refund "batch" {
  for_each = { for r in local.rows : r.order_id => r } # ERROR: Duplicate object key
  payment  = each.value.payment_ref
  amount   = each.value.amount
}
