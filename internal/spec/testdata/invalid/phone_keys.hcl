doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

binding "team" {
  for_each    = toset(["6281311112222"]) # ERROR: Invalid for_each argument
  customer_id = "team-${each.key}"
  phone       = each.key
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

binding "local_form" {
  for_each    = toset(["0813-1111-2222"]) # ERROR: Invalid for_each argument
  customer_id = "x-${each.key}"
  phone       = "6281344445555"
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

refund "by_order" {
  for_each = toset(["62810", "ORD-6281311112222"]) # not phone numbers: too short, not digits
  payment  = each.key
  binding  = binding.local_form["0813-1111-2222"]
}
