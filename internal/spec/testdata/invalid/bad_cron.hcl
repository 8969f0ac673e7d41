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

recurring_charge "four_fields" {
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 * *" # ERROR: Invalid schedule
  start    = "2026-12-01"
}

recurring_charge "out_of_range" {
  binding  = binding.alice
  amount   = 150000
  schedule = "0 25 1 * *" # ERROR: Invalid schedule
  start    = "2026-12-01"
}

recurring_charge "every" {
  binding  = binding.alice
  amount   = 150000
  schedule = "@every 24h" # ERROR: Invalid schedule
  start    = "2026-12-01"
}

recurring_charge "tz" {
  binding  = binding.alice
  amount   = 150000
  schedule = "TZ=UTC" # ERROR: Invalid schedule
  start    = "2026-12-01"
}

recurring_charge "never" {
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 30 2 *" # ERROR: Invalid schedule
  start    = "2026-12-01"
}
