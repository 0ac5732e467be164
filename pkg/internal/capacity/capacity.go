// Package capacity measures what the DynamoDB store costs in read and write
// capacity units, for tests only. A Recorder stands between the DynamoDB
// driver (pkg/store/dynamo) and its client, passes every call on, and
// records each one with the sizes of the items it read and wrote and the
// units DynamoDB charges for it, computed by DynamoDB's published rules:
//
//   - Item size: the sum of the lengths of the attribute names and values;
//     a string is its UTF-8 bytes, a binary its raw bytes, a number about
//     one byte per two significant digits plus one, a boolean or null one
//     byte, a list or map its elements plus 3 bytes ("Item sizes and
//     capacity unit consumption", Amazon DynamoDB Developer Guide,
//     CapacityUnitCalculations).
//   - Reads: an item's size is rounded up to the next 4 KB; a strongly
//     consistent read costs 1 RCU per 4 KB, an eventually consistent one
//     half of that, a transactional one twice. BatchGetItem rounds each item
//     on its own; a Query adds up the items it returns and rounds the total
//     once; a read that finds nothing still costs the minimum (1 RCU
//     strongly consistent) ("DynamoDB read and write operations",
//     read-write-operations; "Managing throughput settings on provisioned
//     tables", ProvisionedThroughput; the Query API reference: "Queries that
//     do not return results consume the minimum number of read capacity
//     units").
//   - Writes: 1 WCU per 1 KB, rounded up, at least 1. PutItem counts the
//     larger of the item it replaces and the new one; DeleteItem the item
//     it deletes; a conditional write whose condition fails still costs
//     the item's units (1 WCU if there is none) (same pages).
//   - Transactions: "DynamoDB performs two underlying reads or writes of
//     every item in the transaction: one to prepare the transaction and one
//     to commit" ("Capacity management for transactions",
//     transaction-apis): a Put or Delete in TransactWriteItems costs twice
//     its write units. A ConditionCheck writes nothing: it is counted as a
//     transactional read of the item it checks (2 RCU per 4 KB).
//
// A KB is 1,024 bytes. The size of an item a write replaces or deletes is
// taken from what the Recorder saw written or read before (a Recorder in
// front of an empty table sees every item it will ever hold). The stand-ins
// cannot tell: moto answers ReturnConsumedCapacity with constants (0.5 per
// GetItem, 1 per PutItem or Query, whatever the size or consistency) and
// minidyn with nothing, so the Recorder computes every unit itself.
//
// It imports pkg/kv, pkg/store/dynamo and the AWS SDK's DynamoDB types.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// Units of DynamoDB's rules.
const (
	ReadUnitBytes  = 4 << 10 // one read capacity unit reads this much, strongly consistently
	WriteUnitBytes = 1 << 10 // one write capacity unit writes this much
)

// Per-partition limits: the most one partition serves per second
// ("Best practices for designing and using partition keys effectively",
// bp-partition-key-design: "as long as the traffic against a given
// partition key does not exceed 3000 read capacity units or 1000 write
// capacity units"). Adaptive capacity may give a frequently accessed item a
// partition of its own, but never more than these.
const (
	PartitionRCU = 3000
	PartitionWCU = 1000
)

// Kind is what a call did to an item.
type Kind string

const (
	Read   Kind = "read"
	Write  Kind = "write"  // a put: Bytes is the larger of the replaced and the new item
	Delete Kind = "delete" // Bytes is the deleted item
	Check  Kind = "check"  // a ConditionCheck in a transaction
)

// Access is one item a call touched.
type Access struct {
	Key  kv.Key
	Kind Kind
	// Bytes is the item's size as DynamoDB counts it (0 for no item).
	Bytes int
}

// Charge is what a call costs in one partition.
type Charge struct {
	Partition string
	RCU, WCU  float64
}

// Call is one DynamoDB operation (not one HTTP attempt: the SDK's retries
// of a call are one Call).
type Call struct {
	Op    string // "GetItem", "Query", "TransactWriteItems", ...
	Items []Access
	// Charges are its units, per partition (a Query's whole page in its
	// partition; every other item in its own).
	Charges []Charge
	// Err is the error the call returned, if any.
	Err error
}

// RCU and WCU are the call's units in every partition together.
func (c *Call) RCU() float64 { return sum(c.Charges, func(ch Charge) float64 { return ch.RCU }) }
func (c *Call) WCU() float64 { return sum(c.Charges, func(ch Charge) float64 { return ch.WCU }) }

func sum(cs []Charge, f func(Charge) float64) float64 {
	var n float64
	for _, c := range cs {
		n += f(c)
	}
	return n
}

// ReadUnits is what reading bytes costs: rounded up to 4 KB, at least one
// unit; half of it eventually consistent, twice of it transactional.
func ReadUnits(bytes int, consistent, transactional bool) float64 {
	u := float64(max(1, ceilDiv(bytes, ReadUnitBytes)))
	switch {
	case transactional:
		return 2 * u
	case !consistent:
		return u / 2
	}
	return u
}

// WriteUnits is what writing (or deleting) bytes costs: rounded up to
// 1 KB, at least one unit, twice of it transactional.
func WriteUnits(bytes int, transactional bool) float64 {
	u := float64(max(1, ceilDiv(bytes, WriteUnitBytes)))
	if transactional {
		return 2 * u
	}
	return u
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// ItemSize is the size of an item by DynamoDB's rules: the lengths of its
// attribute names and values.
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return NumberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		return 3 + ItemSize(v.Value)
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += NumberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	}
	panic(fmt.Sprintf("capacity: no size rule for %T", v))
}

// NumberSize is the size of a number: one byte per two significant digits
// (leading and trailing zeros trimmed), plus one.
func NumberSize(s string) int {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, strings.SplitN(strings.ToLower(s), "e", 2)[0])
	digits = strings.Trim(digits, "0")
	return ceilDiv(max(len(digits), 1), 2) + 1
}

// Recorder is a dynamo.API that records every call it passes on to next.
// It is safe for concurrent use.
type Recorder struct {
	next dynamo.API

	mu     sync.Mutex
	stored map[kv.Key]int // the size of every item as the recorder last saw it
	calls  []Call
}

var _ dynamo.API = (*Recorder)(nil)

// NewRecorder returns a Recorder in front of next. It should see every
// write the table ever gets, so that it knows the size of the items writes
// replace and delete.
func NewRecorder(next dynamo.API) *Recorder {
	return &Recorder{next: next, stored: map[kv.Key]int{}}
}

// Reset forgets the calls recorded so far (not the sizes of stored items).
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

// Calls returns the calls since the last Reset, in the order they ended.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

func (r *Recorder) record(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func keyOf(item map[string]types.AttributeValue) kv.Key {
	s := func(name string) string {
		if v, ok := item[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	return kv.Key{Partition: s(dynamo.PartitionKey), Sort: s(dynamo.SortKey)}
}

// storedSize is the size of the item at k as last seen (0: none).
func (r *Recorder) storedSize(k kv.Key) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stored[k]
}

func (r *Recorder) saw(k kv.Key, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if size == 0 {
		delete(r.stored, k)
	} else {
		r.stored[k] = size
	}
}

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func (r *Recorder) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := r.next.GetItem(ctx, in, opts...)
	c := Call{Op: "GetItem", Err: err}
	if err == nil {
		k := keyOf(in.Key)
		size := ItemSize(out.Item)
		r.saw(k, size)
		c.Items = []Access{{Key: k, Kind: Read, Bytes: size}}
		c.Charges = []Charge{{Partition: k.Partition, RCU: ReadUnits(size, consistent(in.ConsistentRead), false)}}
	}
	r.record(c)
	return out, err
}

func consistent(b *bool) bool { return b != nil && *b }

func (r *Recorder) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out, err := r.next.BatchGetItem(ctx, in, opts...)
	c := Call{Op: "BatchGetItem", Err: err}
	if err == nil {
		for table, ka := range in.RequestItems {
			found := map[kv.Key]int{}
			for _, it := range out.Responses[table] {
				found[keyOf(it)] = ItemSize(it)
			}
			left := map[kv.Key]bool{}
			for _, k := range out.UnprocessedKeys[table].Keys {
				left[keyOf(k)] = true
			}
			for _, key := range ka.Keys {
				k := keyOf(key)
				if left[k] {
					continue // not read in this call
				}
				size := found[k]
				r.saw(k, size)
				c.Items = append(c.Items, Access{Key: k, Kind: Read, Bytes: size})
				c.Charges = append(c.Charges, Charge{Partition: k.Partition, RCU: ReadUnits(size, consistent(ka.ConsistentRead), false)})
			}
		}
	}
	r.record(c)
	return out, err
}

func (r *Recorder) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := r.next.Query(ctx, in, opts...)
	c := Call{Op: "Query", Err: err}
	if err == nil {
		total := 0
		for _, it := range out.Items {
			k, size := keyOf(it), ItemSize(it)
			r.saw(k, size)
			c.Items = append(c.Items, Access{Key: k, Kind: Read, Bytes: size})
			total += size
		}
		part := ""
		if v, ok := in.ExpressionAttributeValues[":pk"].(*types.AttributeValueMemberS); ok {
			part = v.Value
		}
		c.Charges = []Charge{{Partition: part, RCU: ReadUnits(total, consistent(in.ConsistentRead), false)}}
	}
	r.record(c)
	return out, err
}

func (r *Recorder) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out, err := r.next.Scan(ctx, in, opts...)
	c := Call{Op: "Scan", Err: err}
	if err == nil {
		// A Scan counts the items it evaluates, whole, whatever it
		// projects: their stored sizes.
		total := 0
		for _, it := range out.Items {
			k := keyOf(it)
			size := max(ItemSize(it), r.storedSize(k))
			c.Items = append(c.Items, Access{Key: k, Kind: Read, Bytes: size})
			total += size
		}
		c.Charges = []Charge{{Partition: "(scan)", RCU: ReadUnits(total, consistent(in.ConsistentRead), false)}}
	}
	r.record(c)
	return out, err
}

func (r *Recorder) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	k, size := keyOf(in.Item), ItemSize(in.Item)
	old := r.storedSize(k)
	out, err := r.next.PutItem(ctx, in, opts...)
	c := Call{Op: "PutItem", Err: err}
	switch {
	case err == nil:
		r.saw(k, size)
		c.Items = []Access{{Key: k, Kind: Write, Bytes: max(old, size)}}
		c.Charges = []Charge{{Partition: k.Partition, WCU: WriteUnits(max(old, size), false)}}
	case conditionFailed(err):
		// Charged as the item there, 1 WCU if none.
		c.Items = []Access{{Key: k, Kind: Write, Bytes: old}}
		c.Charges = []Charge{{Partition: k.Partition, WCU: WriteUnits(old, false)}}
	}
	r.record(c)
	return out, err
}

func (r *Recorder) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	k := keyOf(in.Key)
	old := r.storedSize(k)
	out, err := r.next.DeleteItem(ctx, in, opts...)
	c := Call{Op: "DeleteItem", Err: err}
	if err == nil || conditionFailed(err) {
		if err == nil {
			r.saw(k, 0)
		}
		c.Items = []Access{{Key: k, Kind: Delete, Bytes: old}}
		c.Charges = []Charge{{Partition: k.Partition, WCU: WriteUnits(old, false)}}
	}
	r.record(c)
	return out, err
}

func (r *Recorder) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	type effect struct {
		k    kv.Key
		size int // after: 0 for a delete
	}
	var c Call
	var effects []effect
	for _, ti := range in.TransactItems {
		switch {
		case ti.Put != nil:
			k, size := keyOf(ti.Put.Item), ItemSize(ti.Put.Item)
			b := max(r.storedSize(k), size)
			c.Items = append(c.Items, Access{Key: k, Kind: Write, Bytes: b})
			c.Charges = append(c.Charges, Charge{Partition: k.Partition, WCU: WriteUnits(b, true)})
			effects = append(effects, effect{k, size})
		case ti.Delete != nil:
			k := keyOf(ti.Delete.Key)
			b := r.storedSize(k)
			c.Items = append(c.Items, Access{Key: k, Kind: Delete, Bytes: b})
			c.Charges = append(c.Charges, Charge{Partition: k.Partition, WCU: WriteUnits(b, true)})
			effects = append(effects, effect{k, 0})
		case ti.ConditionCheck != nil:
			k := keyOf(ti.ConditionCheck.Key)
			b := r.storedSize(k)
			c.Items = append(c.Items, Access{Key: k, Kind: Check, Bytes: b})
			c.Charges = append(c.Charges, Charge{Partition: k.Partition, RCU: ReadUnits(b, true, true)})
		default:
			// The driver sends no Update; its size after would be unknown.
			return nil, errors.New("capacity: an Update in a transaction is not modelled")
		}
	}
	out, err := r.next.TransactWriteItems(ctx, in, opts...)
	c.Op, c.Err = "TransactWriteItems", err
	if err != nil {
		// A cancelled transaction writes nothing; what it costs is not
		// modelled (the measured operations succeed).
		c.Items, c.Charges = nil, nil
	} else {
		for _, e := range effects {
			r.saw(e.k, e.size)
		}
	}
	r.record(c)
	return out, err
}

// Sum adds up the units of calls.
func Sum(calls []Call) (rcu, wcu float64) {
	for i := range calls {
		rcu += calls[i].RCU()
		wcu += calls[i].WCU()
	}
	return rcu, wcu
}

// PerPartition adds up the units of calls per partition.
func PerPartition(calls []Call) map[string]Charge {
	out := map[string]Charge{}
	for i := range calls {
		for _, ch := range calls[i].Charges {
			t := out[ch.Partition]
			t.Partition = ch.Partition
			t.RCU += ch.RCU
			t.WCU += ch.WCU
			out[ch.Partition] = t
		}
	}
	return out
}

// Sustained is how many times per second a workload whose one repetition
// costs load (per partition) can run before one partition reaches
// PartitionRCU or PartitionWCU, and the partition that limits it.
func Sustained(load map[string]Charge) (float64, string) {
	best, by := math.Inf(1), ""
	for p, ch := range load {
		if ch.RCU > 0 && PartitionRCU/ch.RCU < best {
			best, by = PartitionRCU/ch.RCU, p+" (reads)"
		}
		if ch.WCU > 0 && PartitionWCU/ch.WCU < best {
			best, by = PartitionWCU/ch.WCU, p+" (writes)"
		}
	}
	return best, by
}
