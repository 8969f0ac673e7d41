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
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
  end      = "2026-11-30T23:59:59+07:00" # ERROR: End before start
}

recurring_charge "bad_dates" {
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-32" # ERROR: Invalid timestamp
  end      = "next year" # ERROR: Invalid timestamp
}

recurring_charge "no_start" { # ERROR: Missing required argument
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 1 * *"
}
