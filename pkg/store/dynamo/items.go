package dynamo

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// The attributes of an item besides its key (PartitionKey, SortKey) and
// TTLAttribute.
const (
	valueAttr   = "v"   // B: the value
	revAttr     = "rev" // N: the caller's revision
	expiresAttr = "exp" // N: Unix milliseconds of Expires, if set
)

type item = map[string]types.AttributeValue

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// keyOf returns the DynamoDB key of k.
func keyOf(k kv.Key) item {
	return item{PartitionKey: str(k.Partition), SortKey: str(k.Sort)}
}

// encode returns it in the item form of the package doc.
func encode(it *kv.Item) item {
	v := it.Value
	if v == nil {
		// An empty binary attribute, not a missing one: it reads back as
		// an empty value.
		v = []byte{}
	}
	out := item{
		PartitionKey: str(it.Partition),
		SortKey:      str(it.Sort),
		valueAttr:    &types.AttributeValueMemberB{Value: v},
		revAttr:      num(it.Rev),
	}
	if !it.Expires.IsZero() {
		ms := it.Expires.UnixMilli()
		out[expiresAttr] = num(ms)
		out[TTLAttribute] = num(ceilSeconds(ms))
	}
	return out
}

// ceilSeconds converts Unix milliseconds to Unix seconds, rounding up, so
// that time to live never deletes an item before it expires.
func ceilSeconds(ms int64) int64 {
	s := ms / 1000
	if ms%1000 > 0 {
		s++
	}
	return s
}

// decode reads an item of the table. An item not in the driver's form is
// Corrupt; the error names its key, never a value.
func decode(op string, m item) (kv.Item, error) {
	var it kv.Item
	pk, okP := m[PartitionKey].(*types.AttributeValueMemberS)
	sk, okS := m[SortKey].(*types.AttributeValueMemberS)
	if !okP || !okS {
		return it, kv.Errorf(kv.Corrupt, op, nil, "an item without a string partition and sort key")
	}
	it.Key = kv.Key{Partition: pk.Value, Sort: sk.Value}
	v, ok := m[valueAttr].(*types.AttributeValueMemberB)
	if !ok {
		return it, kv.Errorf(kv.Corrupt, op, nil, "the item at %q has no binary %s attribute", it.Key.String(), valueAttr)
	}
	it.Value = v.Value
	if it.Value == nil {
		it.Value = []byte{}
	}
	rev, err := number(m, revAttr)
	if err != nil || rev == nil {
		return it, kv.Errorf(kv.Corrupt, op, err, "the item at %q has no integer %s attribute", it.Key.String(), revAttr)
	}
	it.Rev = *rev
	exp, err := number(m, expiresAttr)
	if err != nil {
		return it, kv.Errorf(kv.Corrupt, op, err, "the item at %q has a malformed %s attribute", it.Key.String(), expiresAttr)
	}
	if exp != nil {
		it.Expires = time.UnixMilli(*exp).UTC()
	}
	return it, nil
}

// number returns the integer attribute name of m, nil if m has none.
func number(m item, name string) (*int64, error) {
	av, ok := m[name]
	if !ok {
		return nil, nil
	}
	n, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return nil, strconv.ErrSyntax
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return nil, err
	}
	return &i, nil
}

// expr is a condition or key condition expression with its placeholders.
type expr struct {
	text   string
	names  map[string]string
	values map[string]types.AttributeValue
}

// condition translates c; the zero expr (no text) for a Cond that always
// holds.
func condition(c kv.Cond) expr {
	pk := map[string]string{"#pk": PartitionKey}
	if at, ok := c.IsAbsent(); ok {
		if at.IsZero() {
			return expr{text: "attribute_not_exists(#pk)", names: pk}
		}
		// An item without exp never expires: the comparison is false.
		return expr{
			text:   "attribute_not_exists(#pk) OR #exp <= :at",
			names:  map[string]string{"#pk": PartitionKey, "#exp": expiresAttr},
			values: map[string]types.AttributeValue{":at": num(at.UnixMilli())},
		}
	}
	if c.IsExists() {
		return expr{text: "attribute_exists(#pk)", names: pk}
	}
	if rev, ok := c.IsRev(); ok {
		return expr{
			text:   "#rev = :rev",
			names:  map[string]string{"#rev": revAttr},
			values: map[string]types.AttributeValue{":rev": num(rev)},
		}
	}
	return expr{}
}

// always is a condition that holds for any item, present or not: a
// ConditionCheck must have one.
var always = expr{text: "attribute_not_exists(#pk) OR attribute_exists(#pk)", names: map[string]string{"#pk": PartitionKey}}

func (e expr) textPtr() *string {
	if e.text == "" {
		return nil
	}
	return &e.text
}
