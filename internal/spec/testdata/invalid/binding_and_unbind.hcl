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

binding "alice_again" {
  customer_id = "cust-001" # ERROR: Duplicate customer_id
  phone       = "6281234567899"
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

unbind "alice" {
  customer_id = "cust-001" # ERROR: Conflicting unbind
  reason      = "account closed"
}

unbind "bob" {
  for_each    = toset(["cust-002", "cust-003"])
  customer_id = "cust-002" # ERROR: Duplicate customer_id
}
