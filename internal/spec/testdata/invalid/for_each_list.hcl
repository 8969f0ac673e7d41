doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  for_each = ["INV-1", "INV-2"] # ERROR: Invalid for_each argument
  payment  = each.value
}
