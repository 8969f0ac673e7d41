settings {
  limits {
    refund  = 0 # ERROR: Invalid amount
    charge  = "12.345" # ERROR: Invalid amount
    refunds = 1000 # ERROR: Unsupported argument
  }
  limits { # ERROR: Duplicate limits block
    refund = 1000
  }
}

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
  binding        = binding.alice
  amount         = 150000
  schedule       = "0 9 1 * *"
  start          = "2026-12-01"
  catch_up_grace = "30s" # ERROR: Invalid catch_up_grace
}
