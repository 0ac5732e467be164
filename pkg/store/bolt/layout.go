package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// The file format. Changing any of it means a new formatVersion.
const formatVersion = "2"

var (
	bucketMeta = []byte("meta")
	bucketKV   = []byte("kv")
	keyFormat  = []byte("format")
	// keyOldSchema marks the first format, which kept the domain's records
	// in buckets of their own.
	keyOldSchema = []byte("schema")
)

// fillPercent is how full bbolt packs the first page of a split (it splits
// a page only when it overflows). The domain's keys arrive in three
// nearly sorted streams (ULIDs, zero-padded version numbers, interleaved
// by concurrent requests) and one random one (names): 0.5, bbolt's
// default, leaves appended pages half full, and 0.9 or more leaves a run
// of nearly empty pages wherever a key lands just behind the newest. The
// two measures disagree on where between: BenchmarkBytesOnDisk in
// pkg/internal/bench (32 writers through the service) gives pages in use
// at 10,000 / 100,000 secrets of 1669 / 1663 B a secret at 0.75, 1578 /
// 1569 at 0.8, 1355 / 1342 at 0.9 and 1307 / 1252 at 1.0, while
// TestSizePerSecret's model of writers that arrive up to 32 places out of
// order gives 1231, 1364, 1806 and 2177 B. 0.8 is better than 0.75 where
// the service writes and far from the model's cliff.
const fillPercent = 0.8

// itemKey is the bbolt key of k: partition, a 0 byte, sort key. Neither
// part holds a 0 byte, so byte order of the joined keys is partition
// order, then sort order, and a partition's keys share the prefix
// partition + 0.
func itemKey(k kv.Key) []byte {
	b := make([]byte, 0, len(k.Partition)+1+len(k.Sort))
	b = append(b, k.Partition...)
	b = append(b, 0)
	return append(b, k.Sort...)
}

// splitKey is the inverse of itemKey.
func splitKey(b []byte) (kv.Key, bool) {
	i := bytes.IndexByte(b, 0)
	if i <= 0 || i == len(b)-1 {
		return kv.Key{}, false
	}
	return kv.Key{Partition: string(b[:i]), Sort: string(b[i+1:])}, true
}

// encodeValue is an item's stored bytes: a header, then the value. The
// header is Rev as a zigzag varint, then Expires as a uvarint: 0 for
// none, else 1 + the zigzag encoding of its Unix milliseconds, so that
// the epoch and earlier instants stay apart from none (6 bytes for an
// instant of this century).
func encodeValue(it *kv.Item) []byte {
	var exp uint64
	if !it.Expires.IsZero() {
		exp = 1 + zigzag(it.Expires.UnixMilli())
	}
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(it.Value))
	b = binary.AppendVarint(b, it.Rev)
	b = binary.AppendUvarint(b, exp)
	return append(b, it.Value...)
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

var errBadHeader = errors.New("an item's header does not decode")

// decodeHeader reads the header of stored bytes v: the revision, the
// expiry (zero for none) and where the value starts.
func decodeHeader(v []byte) (rev int64, exp time.Time, n int, err error) {
	rev, a := binary.Varint(v)
	if a <= 0 {
		return 0, time.Time{}, 0, errBadHeader
	}
	e, b := binary.Uvarint(v[a:])
	if b <= 0 {
		return 0, time.Time{}, 0, errBadHeader
	}
	if e != 0 {
		exp = time.UnixMilli(unzigzag(e - 1)).UTC()
	}
	return rev, exp, a + b, nil
}

// decodeItem returns the item k stored as v, in fresh memory: v belongs to
// the memory map and is only valid inside its transaction.
func decodeItem(k kv.Key, v []byte) (kv.Item, error) {
	rev, exp, n, err := decodeHeader(v)
	if err != nil {
		return kv.Item{}, err
	}
	val := make([]byte, len(v)-n)
	copy(val, v[n:])
	return kv.Item{Key: k, Value: val, Rev: rev, Expires: exp}, nil
}

// upperBound returns the first key after every key that starts with
// prefix, nil if there is none.
func upperBound(prefix []byte) []byte {
	b := bytes.Clone(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return b[:i+1]
		}
	}
	return nil
}
