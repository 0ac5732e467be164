package dynamo_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// CreateTable makes the table of TableSchema with time to live on
// TTLAttribute, and leaves an existing table as it is.
func TestCreateTableOnMoto(t *testing.T) {
	ctx := context.Background()
	c := awstest.NewDynamoClient(awstest.StartMoto(t))
	table := newTable()
	if err := dynamo.CreateTable(ctx, c, table); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	if err := dynamo.CreateTable(ctx, c, table); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Table.BillingModeSummary == nil || d.Table.BillingModeSummary.BillingMode != "PAY_PER_REQUEST" {
		t.Errorf("billing mode = %+v, want PAY_PER_REQUEST", d.Table.BillingModeSummary)
	}
	keys := map[string]string{}
	for _, k := range d.Table.KeySchema {
		keys[aws.ToString(k.AttributeName)] = string(k.KeyType)
	}
	if keys[dynamo.PartitionKey] != "HASH" || keys[dynamo.SortKey] != "RANGE" || len(keys) != 2 {
		t.Errorf("key schema = %v", keys)
	}
	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != dynamo.TTLAttribute || d.TimeToLiveStatus != "ENABLED" {
		t.Errorf("time to live = %+v, want ENABLED on %s", ttl.TimeToLiveDescription, dynamo.TTLAttribute)
	}
}
