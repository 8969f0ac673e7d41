doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

variable "token" {
  sensitive = true
  default   = "tok-123456"
}

refund "a" {
  payment = "INV-1"
  reason  = "refund for ${var.token}" # ERROR: Sensitive value in printed field
}
