doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  payment = "INV-1"
  amount  = 100000000000000000 # ERROR: Invalid amount
}

refund "b" {
  payment = "INV-2"
  amount  = pow(10, 17) # ERROR: Invalid amount
}

refund "c" {
  payment = "INV-3"
  amount  = 1e400 # ERROR: Invalid amount
}
