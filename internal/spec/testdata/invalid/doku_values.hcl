doku {
  environment          = "staging" # ERROR: Invalid environment
  base_url             = "ftp://127.0.0.1:8787" # ERROR: Invalid base_url
  client_id            = "" # ERROR: Invalid client_id
  client_secret        = "sk-test"
  private_key_file     = "merchant.pem"
  requests_per_second  = 0 # ERROR: Invalid requests_per_second
  refund_policy        = "some" # ERROR: Invalid refund_policy
  ip_address           = "1.2.3.4" # ERROR: Invalid ip_address
  settle_time          = "-1s" # ERROR: Invalid settle_time
  retry_budget         = "30" # ERROR: Invalid retry_budget
  retry_wait_max       = "0s" # ERROR: Invalid retry_wait_max
}
