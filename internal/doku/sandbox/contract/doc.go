// Package contract holds the sandbox's contract tests: each drives the
// sandbox over real HTTP exactly as DOKU's documents describe a call,
// building headers, bodies and signatures by hand (not with ddctl's
// doku.Client or its signing functions), and checks the documented
// answer. A change that makes the sandbox disagree with DOKU's documents
// fails here even when ddctl's own client agrees with it.
package contract
