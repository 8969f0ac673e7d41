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
  end      = "2027-11-30"
}

refund "wrong_time" {
  payment = "recurring_charge.gym#2026-12-02T09:00+07:00" # ERROR: Unknown charge occurrence
}

refund "before_start" {
  payment = "recurring_charge.gym#2026-11-01T09:00+07:00" # ERROR: Unknown charge occurrence
}

refund "after_end" {
  payment = "recurring_charge.gym#2027-12-01T09:00+07:00" # ERROR: Unknown charge occurrence
}

refund "unknown_charge" {
  payment = "recurring_charge.gim#2026-12-01T09:00+07:00" # ERROR: Reference to undeclared recurring charge
}

refund "keyed" {
  payment = "recurring_charge.gym[\"alice\"]#2026-12-01T09:00+07:00" # ERROR: Reference to undeclared recurring charge
}

refund "malformed" {
  payment = "recurring_charge.gym@2026-12-01" # ERROR: Invalid payment
}

refund "too_much" {
  payment = "recurring_charge.gym#2026-12-01T09:00+07:00"
  amount  = 150000.01 # ERROR: Refund larger than its charge
}
