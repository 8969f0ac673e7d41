doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

variable "x" {
  default = "a"
}

variable "x" { # ERROR: Duplicate variable block
  default = "b"
}
