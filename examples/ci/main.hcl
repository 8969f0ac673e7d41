# The merchant's settings. The state file is not in the checkout: CI keeps
# it on the self-hosted runner's disk and names it through
# DDCTL_VAR_state_file, set once in the workflow (ddctl.yml).

settings {
  timezone         = "Asia/Jakarta"
  state            = var.state_file
  reference_prefix = "SHOP1"

  # What one apply (or one daemon cycle, or one day) may move. A CSV with
  # amounts in sen instead of rupiah is stopped here, before any call; to
  # go over a limit once, apply with -override-limits="REASON".
  limits {
    refund            = 5000000
    refunds_per_apply = 50000000
    refunds_per_day   = 100000000
  }
}

variable "state_file" {
  description = "the SQLite state file; CI sets DDCTL_VAR_state_file"
  default     = "ddctl.db"
}
