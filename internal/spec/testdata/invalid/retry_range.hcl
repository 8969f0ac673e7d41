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

recurring_charge "zero" {
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
  retry {
    attempts = 0 # ERROR: Invalid retry attempts
    every    = "30s" # ERROR: Invalid retry interval
  }
}

recurring_charge "many" {
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
  retry {
    attempts = 11 # ERROR: Invalid retry attempts
    every    = "1 day" # ERROR: Invalid retry interval
  }
  retry { # ERROR: Duplicate retry block
    attempts = 2.5
    every    = "1h"
  }
}

recurring_charge "half" {
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
  retry {
    attempts = 2.5 # ERROR: Invalid retry attempts
    every    = "1h"
  }
}
