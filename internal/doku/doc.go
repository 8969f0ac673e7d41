// Package doku is ddctl's client for DOKU's SNAP API, Allo Bank direct debit.
//
// It holds the wire types (with DOKU's exact JSON names), the two signature
// schemes of SNAP as pure functions, the B2B access token cache,
// one method per SNAP operation, and the classification of SNAP response
// codes into an Outcome. Every choice DOKU's documents leave UNCONFIRMED is
// a named value in unconfirmed.go.
//
// A Client never retries a mutating call on its own: an answer that leaves
// the outcome open is returned as an *Error whose Outcome is Unknown, and the
// caller resolves it by a status inquiry (principle 2, docs/principles.md).
package doku
