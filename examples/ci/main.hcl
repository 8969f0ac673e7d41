# The merchant's settings. The state file is not in the checkout: CI keeps
# it on the self-hosted runner's disk and names it through
# DDCTL_VAR_state_file, set once in the workflow (ddctl.yml).

settings {
  timezone         = "Asia/Jakarta"
  state            = var.state_file
  reference_prefix = "SHOP1"
}

variable "state_file" {
  description = "the SQLite state file; CI sets DDCTL_VAR_state_file"
  default     = "ddctl.db"
}
