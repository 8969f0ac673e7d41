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

recurring_charge "gym_membership" {
  binding  = binding.alice
  amount   = 150000
  schedule = "0 9 1 * *"
  start    = "2026-12-01"
}

refund "order_1" {
  payment = "INV-1"
}

refund "batch" {
  for_each = { a = "INV-2", b = "INV-3" }
  payment  = each.value
}

moved {
  from = recurring_charge.gym
  to   = refund.order_1 # ERROR: Invalid moved block
}

moved {
  from = refund.order_1 # ERROR: Invalid moved block
  to   = refund.batch["a"]
}

moved {
  from = refund.old
  to   = refund.order_2 # ERROR: Invalid moved block
}

moved {
  from = "refund.quoted" # ERROR: Invalid moved block
  to   = refund.order_1
}

moved {
  from = unbind.bob # ERROR: Invalid moved block
  to   = unbind.carol # ERROR: Invalid moved block
}

moved {
  from = recurring_charge.gym
  to   = recurring_charge.gym_membership
}

moved {
  from = recurring_charge.gym # ERROR: Duplicate moved block
  to   = recurring_charge.gym_membership
}

moved { # ERROR: Cycle of moved blocks
  from = refund.x
  to   = refund.y
}

moved { # ERROR: Cycle of moved blocks
  from = refund.y
  to   = refund.x
}

moved { # ERROR: Invalid moved block
  from = refund.single["a"]
  to   = refund.batch
}

refund "pair" {
  for_each = { a = "INV-4" }
  payment  = each.value
}

moved {
  from = refund.old_pair
  to   = refund.pair
}

moved { # ERROR: Overlapping moved blocks
  from = refund.old_pair["a"]
  to   = refund.batch["a"]
}
