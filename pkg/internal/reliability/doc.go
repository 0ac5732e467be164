// Package reliability holds end-to-end tests of the service's reliability
// and security properties: model-based checks on moto, crash safety of
// `mobius serve` under SIGKILL, faults at the HTTP level, the cryptographic
// binding of stored ciphertext, tenant isolation, plaintext leaks, load with
// invariants and resource limits. It has no code of its own; see TESTING.md
// at the repository root for what each test checks and how to run it longer.
package reliability
