doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

variable "phone" {
  sensitive = true
  default   = "6281234567890"
}

binding "alice" {
  customer_id = "cust-${var.phone}" # ERROR: Sensitive value in printed field
  phone       = var.phone # ERROR: Sensitive value in printed field
  success_url = "https://shop.example/ok?p=${var.phone}" # ERROR: Sensitive value in printed field
  failed_url  = "https://shop.example/bind/failed"
}

recurring_charge "gym" {
  binding     = binding.alice
  amount      = tonumber(substr(var.phone, 0, 4)) # ERROR: Sensitive value in printed field
  schedule    = "0 9 1 * *"
  start       = "2026-12-01"
  description = "for ${var.phone}" # ERROR: Sensitive value in printed field
}
