doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  payment = "INV-1"
  amount  = 0 # ERROR: Invalid amount
}

refund "b" {
  payment = "INV-2"
  amount  = "0.00" # ERROR: Invalid amount
}
