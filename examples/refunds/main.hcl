# Single refunds: full by default (Allo refunds are full-only), one
# scheduled for later, and one of a recurring charge's occurrence.

binding "alice" {
  customer_id = "cust-001"
  phone       = "6281234567890"
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

recurring_charge "gym" {
  binding     = binding.alice
  amount      = 150000
  schedule    = "0 9 1 * *"
  start       = "2026-12-01"
  description = "Gym membership"
}

refund "order_1001" {
  payment = "INV-1001"
  reason  = "item damaged"
}

refund "order_1002" {
  payment    = "INV-1002"
  amount     = 75000
  reason     = "order cancelled"
  not_before = "2026-12-05T02:00:00+07:00"
}

refund "gym_december" {
  payment = "recurring_charge.gym#2026-12-01T09:00+07:00"
  reason  = "club closed for renovation"
}
