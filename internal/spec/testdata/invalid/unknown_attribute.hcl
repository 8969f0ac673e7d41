doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  payment = "INV-1"
  amont   = 50000 # ERROR: Unsupported argument
}
