// Package reconcile decides and makes the DOKU calls that bring DOKU and
// the state in line with the configuration: a resolver that settles
// operations left open by an earlier run, a plan (data: per action the
// address, the amounts and the idempotency key), the apply that executes a
// plan with the intent journalled before every request, and the renderers
// of a plan and of an apply's result.
//
// It declares the two interfaces it needs, DOKU and Store, and is tested
// against the real sandbox and a real state file.
package reconcile
