doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

binding "alice" { # ERROR: Missing required argument
  customer_id = "cust-001"
  phon        = "6281234567890" # ERROR: Unsupported argument
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

unbind "bob" {
  customer_id = "cust-002"
  reson       = "closed" # ERROR: Unsupported argument
}
