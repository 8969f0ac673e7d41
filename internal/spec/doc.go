// Package spec turns ddctl's HCL configuration into a typed, validated
// Config: the desired state that plan compares with the state file and
// with DOKU.
//
// A configuration is every *.hcl file of one directory (plus any extra
// files named on the command line). Load reads them in one pass:
//
//  1. parse each file and split its body into top-level blocks
//     (rootSchema); unknown blocks and attributes are errors with ranges;
//  2. decode the variable blocks and settle each variable's value from its
//     default, DDCTL_VAR_name, -var-file files and -var name=value, in that
//     order of precedence (variable.go);
//  3. evaluate the locals blocks in the order of their references, with
//     cycles reported (local.go);
//  4. build the evaluation context: var.*, local.*, the function table
//     (function.go) and, inside for_each instances, each.key/each.value;
//     references to undeclared variables and locals are reported with a
//     suggestion before anything is evaluated (eval.go);
//  5. decode settings, doku, binding, unbind, recurring_charge and refund
//     blocks, in that order, one decode function per kind, each with its
//     own schema (settings.go, doku.go, binding.go, charge.go, refund.go):
//     a charge's binding is resolved to a declared binding instance, and a
//     refund may name a charge occurrence, checked against the charge's
//     schedule (occurrence.go); bindings and unbinds are then checked
//     against each other by customer;
//  6. compute Config.Digest over the evaluated desired state (digest.go).
//
// Bad input never stops the pass: every problem becomes an hcl.Diagnostic
// whose Subject is the offending range, so that cmd can print all of them
// as file:line:col at once (principle 6, docs/principles.md). Load returns a Config
// only when there is no error.
//
// # Secrets
//
// A variable declared with sensitive = true carries a cty mark
// (sensitiveMark) and so does everything derived from it. Only
// doku.client_secret (always secret, held as a secret.Value) and the two
// key file paths may receive a marked value; anywhere else (customer ids,
// phones, URLs, amounts, descriptions and every other field) it is the
// "Sensitive value in printed field" error, because those fields appear in
// plans, logs and state (principle 5, docs/principles.md). No diagnostic text
// contains a sensitive value: function errors whose arguments are
// sensitive are replaced by a neutral message, and hcl's diagnostic writer
// skips marked values.
//
// Load reads the files it is given and whatever file() reads, and has no
// other side effect; it is safe to call from several goroutines.
package spec
