doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

refund "empty_key" {
  for_each = { "" = "INV-1", "k" = "INV-2" } # ERROR: Invalid for_each argument
  payment  = each.value
}

variable "orders" {
  sensitive = true
  default   = ["INV-1"]
}

refund "sensitive" {
  for_each = toset(var.orders) # ERROR: Invalid for_each argument
  payment  = each.value
}

refund "numbers" {
  for_each = toset([1, 2]) # ERROR: Invalid for_each argument
  payment  = each.value
}

refund "null" {
  for_each = null # ERROR: Invalid for_each argument
  payment  = "INV-3"
}
