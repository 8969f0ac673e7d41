doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

variable "secret" {
  type      = string
  sensitive = true
  default   = "12345"
}

refund "a" {
  payment = upper(var.secret) # ERROR: Sensitive value in printed field
  amount  = tonumber(var.secret) # ERROR: Sensitive value in printed field
}

refund "b" {
  payment = "INV-2"
  amount  = tonumber("x${var.secret}") # ERROR: Invalid function argument
}
