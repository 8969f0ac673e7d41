# Customers whose Allo accounts should be bound to this merchant. Each
# binding waits for its customer to confirm with OTP and PIN: plan shows
# the link to send them.

variable "bind_success_url" {
  default = "https://shop.example/bind/ok"
}

locals {
  failed_url = "https://shop.example/bind/failed"
}

binding "alice" {
  customer_id = "cust-001"
  phone       = "6281234567890"
  success_url = var.bind_success_url
  failed_url  = local.failed_url
}

# One binding per row of customers.csv: binding.team["cust-010"] and so on.
binding "team" {
  for_each    = { for c in csvdecode(file("customers.csv")) : c.customer_id => c }
  customer_id = each.key
  phone       = each.value.phone
  success_url = var.bind_success_url
  failed_url  = local.failed_url
}
