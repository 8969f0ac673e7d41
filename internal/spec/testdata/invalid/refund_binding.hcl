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

binding "bob" {
  customer_id = "cust-002"
  phone       = "6281298765432"
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

recurring_charge "gym" {
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
  end      = "2027-11-30"
}

refund "fine" {
  payment = "INV-1"
  binding = binding.bob
}

refund "typo" {
  payment = "INV-2"
  binding = binding.bobb # ERROR: Reference to undeclared binding
}

refund "not_a_reference" {
  payment = "INV-3"
  binding = "binding.bob" # ERROR: Invalid binding reference
}

refund "other_payer" {
  payment = "recurring_charge.gym#2026-12-01T09:00+07:00"
  binding = binding.bob # ERROR: Binding is not the charge's
}

refund "same_payer" {
  payment = "recurring_charge.gym#2027-01-01T09:00+07:00"
  binding = binding.alice
}
