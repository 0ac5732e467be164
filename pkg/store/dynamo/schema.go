package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The table's key and time-to-live attributes. template.yaml declares the
// same table; a test keeps the two in agreement.
const (
	// PartitionKey is the table's hash key, a string.
	PartitionKey = "PK"
	// SortKey is the table's range key, a string.
	SortKey = "SK"
	// TTLAttribute holds, on items with an expiry only, the Unix time in
	// seconds (rounded up) after which DynamoDB may delete the item.
	TTLAttribute = "expires_at"
)

// TableSchema returns the input that creates the store's table: one table,
// string PK and SK, on-demand billing. Time to live on TTLAttribute is
// enabled separately (CreateTable does both).
func TableSchema(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(PartitionKey), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(SortKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(PartitionKey), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(SortKey), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	}
}

// TableAPI is what CreateTable needs of a DynamoDB client.
type TableAPI interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTimeToLive(context.Context, *dynamodb.UpdateTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// CreateTable creates the table as TableSchema describes it, waits until it
// is ACTIVE, and enables time to live on TTLAttribute. A table that already
// exists is left as it is, and its time to live is (re)enabled.
func CreateTable(ctx context.Context, api TableAPI, name string) error {
	_, err := api.CreateTable(ctx, TableSchema(name))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("creating table %s: %w", name, err)
	}
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describing table %s: %w", name, err)
		}
		if out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for table %s to become ACTIVE: %w", name, ctx.Err())
		case <-t.C:
		}
	}
	_, err = api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true),
		},
	})
	if err != nil && !isTTLAlreadyEnabled(err) {
		return fmt.Errorf("enabling time to live on table %s: %w", name, err)
	}
	return nil
}

// isTTLAlreadyEnabled recognises DynamoDB's refusal to enable time to live
// twice.
func isTTLAlreadyEnabled(err error) bool {
	code, msg := apiError(err)
	return code == "ValidationException" && containsFold(msg, "already enabled")
}
