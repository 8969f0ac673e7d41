doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

settings {
  reference_prefix = "SHOP-1" # ERROR: Invalid reference_prefix
}
