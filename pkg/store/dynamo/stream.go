package dynamo

import (
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// StreamImageItem reads the kv.Item that an image of the table's DynamoDB
// stream holds (a record's NewImage or OldImage, as a Lambda function
// triggered by the stream receives it), so that a reader of the stream
// needs to know nothing of the item form. It is the driver's own reading
// of a stored item: an image not in the form of the package doc is
// Corrupt, and a missing image (a stream whose view type carries none) is
// Invalid. Errors name the item's key, never its value.
func StreamImageItem(image map[string]events.DynamoDBAttributeValue) (it kv.Item, err error) {
	const op = "StreamImageItem"
	if len(image) == 0 {
		return kv.Item{}, kv.Errorf(kv.Invalid, op, nil, "the stream record has no image of the item; the table's stream must carry new images (StreamViewType NEW_IMAGE or NEW_AND_OLD_IMAGES)")
	}
	// The library's accessors panic on a value that is not of the type it
	// claims (a zero DynamoDBAttributeValue, not one read from JSON).
	defer func() {
		if recover() != nil {
			it, err = kv.Item{}, kv.Errorf(kv.Corrupt, op, nil, "the stream image holds an attribute value of no DynamoDB type")
		}
	}()
	m := make(item, len(image))
	for name, av := range image {
		m[name] = fromStream(av)
	}
	return decode(op, m)
}

// fromStream converts a stream image's attribute value to the SDK's, the
// form decode reads.
func fromStream(av events.DynamoDBAttributeValue) types.AttributeValue {
	switch av.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: av.String()}
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: av.Number()}
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: av.Binary()}
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: av.Boolean()}
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: av.StringSet()}
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: av.NumberSet()}
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: av.BinarySet()}
	case events.DataTypeList:
		l := av.List()
		out := make([]types.AttributeValue, len(l))
		for i, e := range l {
			out[i] = fromStream(e)
		}
		return &types.AttributeValueMemberL{Value: out}
	case events.DataTypeMap:
		mv := av.Map()
		out := make(map[string]types.AttributeValue, len(mv))
		for k, e := range mv {
			out[k] = fromStream(e)
		}
		return &types.AttributeValueMemberM{Value: out}
	}
	return &types.AttributeValueMemberNULL{Value: true}
}
