# A monthly gym membership charged on the 1st at 09:00 Jakarta time, and a
# weekly plan for a team, one charge per member.

settings {
  timezone         = "Asia/Jakarta"
  reference_prefix = "GYM"
}

binding "alice" {
  customer_id = "cust-001"
  phone       = "6281234567890"
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

# The team's members, keyed by member id: a key is part of an address that
# plans and history show in full, so it is never a phone number.
locals {
  team = {
    "member-1" = "6281311112222"
    "member-2" = "6281344445555"
  }
}

binding "team" {
  for_each    = local.team
  customer_id = "team-${each.key}"
  phone       = each.value
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

recurring_charge "gym" {
  binding     = binding.alice
  amount      = 150000
  schedule    = "0 9 1 * *"
  start       = "2026-12-01"
  end         = "2027-11-30"
  description = "Gym membership"
  catch_up    = "latest" # missed months: charge only the latest
  retry {
    attempts = 3 # after insufficient balance or no confirmation
    every    = "24h"
  }
}

recurring_charge "team_weekly" {
  for_each    = local.team
  binding     = binding.team[each.key]
  amount      = "25000.00"
  schedule    = "0 8 * * MON"
  start       = "2026-12-07"
  description = "Team plan"
  catch_up    = "none"
}
