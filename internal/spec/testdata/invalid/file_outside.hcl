doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "a" {
  payment = file("../outside.txt") # ERROR: Invalid function argument
}

refund "b" {
  payment = file("/etc/hostname") # ERROR: Invalid function argument
}
