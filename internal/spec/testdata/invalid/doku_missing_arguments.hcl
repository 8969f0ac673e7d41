doku { # ERROR: Missing required argument
  environment = "sandbox"
  base_url    = "http://user:pw@127.0.0.1:8787" # ERROR: Invalid base_url
}
