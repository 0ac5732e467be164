package secrets

import (
	"strconv"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// The store layout: every key the domain writes, in one place. A driver
// sees only these keys and opaque values (records.go).
//
//	partition                 sort key           item
//	P#<project>               S#<secret ID>      the secret's record
//	P#<project>               N#<name>           a full copy of the record, under its name; or an
//	                                             alias (an old name), or a trash tombstone (trash.go)
//	P#<project>               T#<secret ID>      a secret in the trash: its record, while its
//	                                             versions stay in place
//	P#<project>               K#<key ID>         an API key's listing (a copy of the key record)
//	P#<project>               G#<grant ID>       a live resolve grant
//	P#<project>#S#<secret ID> V#<number>         a version's metadata
//	P#<project>#S#<secret ID> C#<number>         a version's sealed ciphertext, immutable, erased on destroy
//	K#<hash>                  K                  an API key, by the SHA-256 of the key
//	A#<project>#<secret ID>#<shard>  R#<ULID>    a resolution audit record (append-only)
//	E#<project>               <event ID>         a change event (events.go), kept EventRetention
//	Q#reminders               <due>#<project>#<secret ID>#<kind>
//	                                             a reminder of an expiry or rotation date, due then
//	Q#purges                  <due>#<project>#<secret ID>
//	                                             a trashed secret's purge, due then
//	M                         <name>             service metadata (the key check)
//
// A due time in a sort key is Unix milliseconds zero-padded to 13 digits,
// so byte order is time order; the Q# partitions are the Sweep's work
// queues, read in that order, and each item is deleted in the commit that
// does its work, so that it is done once however many sweepers run.
//
// Version numbers are zero-padded to 10 digits, so byte order is number
// order; ULIDs sort in time order; names sort in byte order, which is the
// order lists promise.
const (
	metaPartition = "M"
	// auditShards spreads one secret's audit over that many partitions,
	// so that a popular secret's audit writes are not capped by one
	// partition's write rate (docs/PERFORMANCE.md: capacity model).
	auditShards = 4
)

func projectPart(project string) string    { return "P#" + project }
func secretPart(project, id string) string { return "P#" + project + "#S#" + id }
func secretKey(project, id string) kv.Key {
	return kv.Key{Partition: projectPart(project), Sort: "S#" + id}
}
func nameKey(project, name string) kv.Key {
	return kv.Key{Partition: projectPart(project), Sort: "N#" + name}
}
func trashKey(project, id string) kv.Key {
	return kv.Key{Partition: projectPart(project), Sort: "T#" + id}
}
func eventPart(project string) string { return "E#" + project }
func eventKey(project, id string) kv.Key {
	return kv.Key{Partition: eventPart(project), Sort: id}
}
func keyListingKey(project, id string) kv.Key {
	return kv.Key{Partition: projectPart(project), Sort: "K#" + id}
}
func apiKeyKey(hash string) kv.Key { return kv.Key{Partition: "K#" + hash, Sort: "K"} }
func versionKey(project, id string, n int) kv.Key {
	return kv.Key{Partition: secretPart(project, id), Sort: versionSort("V#", n)}
}
func ciphertextKey(project, id string, n int) kv.Key {
	return kv.Key{Partition: secretPart(project, id), Sort: versionSort("C#", n)}
}
func auditPart(project, id string, shard int) string {
	return "A#" + project + "#" + id + "#" + strconv.Itoa(shard)
}
func auditKey(project, id, resID string) kv.Key {
	return kv.Key{Partition: auditPart(project, id, auditShard(resID)), Sort: "R#" + resID}
}
func metaKey(name string) kv.Key { return kv.Key{Partition: metaPartition, Sort: name} }

// The Sweep's queues.
const (
	reminderPartition = "Q#reminders"
	purgePartition    = "Q#purges"
)

func reminderKey(due time.Time, project, id, kind string) kv.Key {
	return kv.Key{Partition: reminderPartition, Sort: dueSort(due) + "#" + project + "#" + id + "#" + kind}
}
func purgeKey(due time.Time, project, id string) kv.Key {
	return kv.Key{Partition: purgePartition, Sort: dueSort(due) + "#" + project + "#" + id}
}

// dueSort is t in Unix milliseconds, zero-padded to 13 digits (times from
// 1970 to 2286), so that byte order is time order.
func dueSort(t time.Time) string {
	ms := max(t.UnixMilli(), 0)
	s := strconv.FormatInt(ms, 10)
	for len(s) < 13 {
		s = "0" + s
	}
	return s
}

// auditShard places a resolution by its ID's random part, so that the
// records of one instant spread evenly.
func auditShard(resID string) int {
	if resID == "" {
		return 0
	}
	return int(resID[len(resID)-1]) % auditShards
}

// versionSort is prefix + the number, zero-padded to 10 digits.
func versionSort(prefix string, n int) string {
	var b [12]byte
	out := append(b[:0], prefix...)
	s := strconv.Itoa(n)
	for i := len(s); i < 10; i++ {
		out = append(out, '0')
	}
	return string(append(out, s...))
}

// maxVersion is the highest version number the layout can order.
const maxVersion = 9_999_999_999

// Keys of the layout, for operators' tools and the conformance suites,
// which check what each backend holds (a destroyed version's ciphertext
// is gone; a record moved to another place is refused).

// SecretItemKey is where the record of secret id is stored.
func SecretItemKey(project, id string) kv.Key { return secretKey(project, id) }

// NameItemKey is where the copy of the record that holds name is stored.
func NameItemKey(project, name string) kv.Key { return nameKey(project, name) }

// VersionItemKey is where the metadata of version n is stored.
func VersionItemKey(project, id string, n int) kv.Key { return versionKey(project, id, n) }

// CiphertextItemKey is where the sealed ciphertext of version n is stored.
func CiphertextItemKey(project, id string, n int) kv.Key { return ciphertextKey(project, id, n) }

// TrashItemKey is where the record of secret id is kept while it is in
// the trash.
func TrashItemKey(project, id string) kv.Key { return trashKey(project, id) }

// EventPartition is the partition of the project's change events.
func EventPartition(project string) string { return eventPart(project) }

// Partitions of the Sweep's queues.
const (
	ReminderPartition = reminderPartition
	PurgePartition    = purgePartition
)
