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

# DOKU takes a refund only with the payer's customer token: a refund of a
# payment made outside ddctl names the payer's binding. A refund of a
# charge occurrence uses the binding it was paid through.
refund "order_1001" {
  payment = "INV-1001"
  binding = binding.alice
  reason  = "item damaged"
}

refund "order_1002" {
  payment    = "INV-1002"
  binding    = binding.alice
  amount     = 75000
  reason     = "order cancelled"
  not_before = "2026-12-05T02:00:00+07:00"
}

refund "gym_december" {
  payment = "recurring_charge.gym#2026-12-01T09:00+07:00"
  reason  = "club closed for renovation"
}
