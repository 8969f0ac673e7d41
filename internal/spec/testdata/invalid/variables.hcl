doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

variable "needed" { # ERROR: No value for required variable
  type = string
}

variable "count" {
  type    = number
  default = "many" # ERROR: Invalid default value for variable
}

variable "typo" {
  defualt = "x" # ERROR: Unsupported argument
}

refund "a" {
  payment = var.nope # ERROR: Reference to undeclared input variable
}
