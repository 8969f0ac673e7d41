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

binding "team" {
  for_each    = { bob = "6281234567891", carol = "6281234567892" }
  customer_id = "team-${each.key}"
  phone       = each.value
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

recurring_charge "gym" {
  binding  = binding.alcie # ERROR: Reference to undeclared binding
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}

recurring_charge "team" {
  for_each = toset(["bob", "dave"])
  binding  = binding.team[each.key] # ERROR: Reference to undeclared binding
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}

recurring_charge "shape" {
  binding  = binding.team # ERROR: Invalid binding reference
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}
