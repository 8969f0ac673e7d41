# A doku block may not send credentials and authCodes to a host of its
# choosing: production calls DOKU's production host only; a sandbox block
# DOKU's sandbox host or a simulator on this machine.
doku {
  environment      = "production"
  base_url         = "http://127.0.0.1:9999" # ERROR: base_url not allowed here
  client_id        = "BRN-0001"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}
