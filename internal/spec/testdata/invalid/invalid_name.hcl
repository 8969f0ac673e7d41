doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "1st" { # ERROR: Invalid refund name
  payment = "INV-1"
}

variable "my var" { # ERROR: Invalid variable name
  default = "x"
}
