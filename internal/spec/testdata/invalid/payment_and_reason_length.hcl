doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  payment = "INV-00000000001111111111222222222233333333334444444444555555555566" # ERROR: Invalid payment
  reason  = format("%300s", "long") # ERROR: Invalid reason
}

refund "b" {
  payment = "" # ERROR: Invalid payment
}

refund "c" {
  payment = null # ERROR: Missing required argument
}
