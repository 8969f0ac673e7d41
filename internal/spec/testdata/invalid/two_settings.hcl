doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

settings {
  timezone = "Asia/Jakarta"
}

settings { # ERROR: Duplicate settings block
  timezone = "UTC"
}
