# Production DOKU. Nothing secret is in git: the workflow sets these
# variables from the repository's secrets (DDCTL_VAR_client_id,
# DDCTL_VAR_client_secret) and writes the private key to a temporary file
# (DDCTL_VAR_private_key_file).

doku {
  environment      = "production"
  client_id        = var.client_id
  client_secret    = var.client_secret
  private_key_file = var.private_key_file
  # DOKU's public key, from the DOKU Back Office (not a secret). ddctl
  # daemon verifies DOKU's notifications with it. The file here is a
  # placeholder: replace it with DOKU's.
  doku_public_key_file = "doku-public.pem"
}

variable "client_id" {
  description = "the Client ID from the DOKU Back Office"
}

variable "client_secret" {
  description = "the Secret Key from the DOKU Back Office"
  sensitive   = true
}

variable "private_key_file" {
  description = "the merchant's RSA private key (PEM) that signs the B2B token request"
}
