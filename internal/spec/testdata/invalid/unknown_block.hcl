doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

charge "gym" { # ERROR: Unsupported block type
  amount = 150000
}
