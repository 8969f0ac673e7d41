# ERROR: Missing doku block
refund "a" {
  payment = "INV-1"
}
