doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  payment  = "INV-1"
  amount   = 50000
  currency = "USD" # ERROR: Unsupported currency
}
