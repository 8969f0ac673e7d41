doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  payment = "INV-1"
}

refund "a" { # ERROR: Duplicate refund block
  payment = "INV-2"
}
