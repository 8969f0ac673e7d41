doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

binding "alice" {
  customer_id = "cust-001"
  phone       = "6281234567890"
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

recurring_charge "gym" {
  binding     = binding.alice
  amount      = true # ERROR: Invalid amount
  schedule    = "0 9 1 * *"
  start       = "2026-12-01"
  description = ["Gym"] # ERROR: Incorrect value type
  retry       = 3 # ERROR: Unsupported argument
}

binding "bob" {
  customer_id = { id = 1 } # ERROR: Incorrect value type
  phone       = 6281234567891
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}
