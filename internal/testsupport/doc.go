// Package testsupport holds what the tests of several packages share: a
// buffer safe for concurrent writers, a settable clock and a running
// `mobius serve` process.
//
// Only tests import it (it is no part of any binary); it imports the
// standard library only, so any package's tests may use it without a cycle.
package testsupport
