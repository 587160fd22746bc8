// Package conformance runs the shared corpus of Python cases
// (testdata/python/cases) under every backend that this host can run, and
// checks that each backend gives the outcome the case expects: same status,
// output, return value and errors whatever the isolation tier.
//
// The corpus format is documented in testdata/python/README.md. [Load]
// parses a directory of cases, [Case.Request] turns one into a request and
// [Case.Check] compares a Result with the case's expectations. The test
// (conformance_test.go) drives them through the root package only, as an
// embedder would: pybox.New, then (*Sandbox).Run per case and backend.
package conformance
