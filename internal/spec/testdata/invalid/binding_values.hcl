doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

binding "alice" {
  customer_id   = "cust-0000000001111111111222222222233333333334444444444555555555566" # ERROR: Invalid customer_id
  phone         = "+6281234567890" # ERROR: Invalid phone
  success_url   = "/bind/ok" # ERROR: Invalid success_url
  failed_url    = "ftp://shop.example/failed" # ERROR: Invalid failed_url
  email         = "not an email" # ERROR: Invalid email
  os_type       = "windows" # ERROR: Invalid os_type
  channel_id    = "sms" # ERROR: Invalid channel_id
  device_model  = "" # ERROR: Invalid device_model
  customer_name = format("%80s", "x") # ERROR: Invalid customer_name
}

binding "bob" {
  customer_id = "" # ERROR: Invalid customer_id
  phone       = "0812345678" # ERROR: Invalid phone
  success_url = "https://user:pw@shop.example/ok" # ERROR: Invalid success_url
  failed_url  = "https://shop.example/failed"
}

binding "carol" {
  customer_id = "cust-003"
  phone       = "62812" # ERROR: Invalid phone
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/failed"
}

binding "dave" {
  customer_id = "cust-004"
  phone       = "62812345678901234" # ERROR: Invalid phone
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/failed"
}
