doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  payment    = "INV-1"
  not_before = "2026-13-01" # ERROR: Invalid timestamp
}

refund "b" {
  payment    = "INV-2"
  not_before = "tomorrow" # ERROR: Invalid timestamp
}
