doku {
  environment      = "sandbox"
  client_id        = "C-1"
  client_secret    = "sk-test"
  private_key_file = "merchant.pem"
}

locals {
  a = "${local.b}-x" # ERROR: Cycle in local values
  b = upper(local.a) # ERROR: Cycle in local values
  c = local.c # ERROR: Cycle in local values
  d = local.a
}

locals {
  a = "again" # ERROR: Duplicate local value
  e = local.nope # ERROR: Reference to undeclared local value
}

refund "r" {
  payment = local.d
}
