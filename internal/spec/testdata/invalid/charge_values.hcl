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
  amount      = null # ERROR: Missing required argument
  currency    = "USD" # ERROR: Unsupported currency
  schedule    = "0 9 1 * *"
  start       = "2026-12-01"
  description = "Gym membership, monthly, with sauna and pool" # ERROR: Invalid description
}

recurring_charge "cheap" {
  binding  = binding.alice
  amount   = 0.001 # ERROR: Invalid amount
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}

recurring_charge "1bad" { # ERROR: Invalid recurring_charge name
  binding  = binding.alice
  amount   = 100
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}
