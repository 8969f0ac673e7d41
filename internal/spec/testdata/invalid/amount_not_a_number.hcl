doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  payment = "INV-1"
  amount  = "abc" # ERROR: Invalid amount
}

refund "b" {
  payment = "INV-2"
  amount  = "1e5" # ERROR: Invalid amount
}

refund "c" {
  payment = "INV-3"
  amount  = true # ERROR: Invalid amount
}

refund "d" {
  payment = "INV-4"
  amount  = "" # ERROR: Invalid amount
}
