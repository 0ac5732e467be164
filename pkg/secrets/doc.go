// Package secrets is the domain of Mobius Secrets: secrets, their immutable
// versions, labels and dates, API keys, resolve grants, the resolution
// audit, the change feed and the trash, the rules that govern them, and
// the Service that enforces those rules.
//
// It imports only the standard library, pkg/envelope and pkg/kv. Storage
// is reached through a kv.Driver (every key and record is the domain's:
// layout.go, records.go) and key management through the KeyWrapper
// interface; storage is treated as untrusted, so every value is encrypted
// before a driver sees it.
//
// Every change writes its events in the same commit as the change
// (events.go): the feed never holds an event without its change, nor
// misses one. Event IDs are ULIDs taken right before the commit; rather
// than order a project's writes through one counter, the feed serves an
// event only once its ID time is EventSettle old, and every commit that
// carries events runs with a deadline of EventSettle/2 from that time, so
// a commit slower than that fails instead of landing behind a reader's
// cursor. A delete moves a secret to the trash (trash.go) for
// Options.TrashRetention; the Sweep (sweep.go) fires reminders and purges
// due trash from queue partitions, exactly once however many processes
// run it.
package secrets
