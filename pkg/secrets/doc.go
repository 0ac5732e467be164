// Package secrets is the domain of Mobius Secrets: secrets, their immutable
// versions, API keys, idempotency records and the resolution audit, the rules
// that govern them, and the Service that enforces those rules.
//
// It imports only the standard library and pkg/envelope. Storage and key
// management are reached through the Store and KeyWrapper interfaces, which
// adapters in pkg/store/* and pkg/keys/* implement; storage is treated as
// untrusted, so every value is encrypted before a Store sees it.
package secrets
