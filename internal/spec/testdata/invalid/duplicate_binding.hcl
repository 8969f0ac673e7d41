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

binding "alice" { # ERROR: Duplicate binding block
  customer_id = "cust-002"
  phone       = "6281234567891"
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

unbind "bob" {
  customer_id = "cust-007"
}

unbind "bob" { # ERROR: Duplicate unbind block
  customer_id = "cust-008"
}
