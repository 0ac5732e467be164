package dynamo_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
	"github.com/mobius-secrets/mobius/pkg/store/storetest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

var tables atomic.Int64

// newTable returns a fresh table name.
func newTable() string {
	return fmt.Sprintf("mobius-%d-%d", time.Now().UnixNano(), tables.Add(1))
}

// backend is one DynamoDB stand-in.
type backend struct {
	name string
	// client returns a client and a fresh table on it.
	client func(t *testing.T, opts ...func(*dynamodb.Options)) (*dynamodb.Client, string)
}

// motoDB runs on this binary's moto_server; each call makes a table with
// dynamo.CreateTable (TTL included).
func motoDB(t *testing.T, opts ...func(*dynamodb.Options)) (*dynamodb.Client, string) {
	t.Helper()
	c := awstest.NewDynamoClient(awstest.StartMoto(t), opts...)
	table := newTable()
	if err := dynamo.CreateTable(context.Background(), c, table); err != nil {
		t.Fatalf("CreateTable on moto: %v", err)
	}
	return c, table
}

// minidynDB runs on a fresh in-process minidyn. minidyn has no
// UpdateTimeToLive (nor TableStatus), so the table is created from
// TableSchema directly; the store never relies on TTL deleting anything.
func minidynDB(t *testing.T, opts ...func(*dynamodb.Options)) (*dynamodb.Client, string) {
	t.Helper()
	c := awstest.NewDynamoClient(awstest.StartMinidyn(t), opts...)
	table := newTable()
	if _, err := c.CreateTable(context.Background(), dynamo.TableSchema(table)); err != nil {
		t.Fatalf("CreateTable on minidyn: %v", err)
	}
	return c, table
}

var backends = []backend{{"moto", motoDB}, {"minidyn", minidynDB}}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			newStore := func(t *testing.T) secrets.Store {
				c, table := b.client(t)
				return dynamo.New(c, table)
			}
			t.Run("Store", func(t *testing.T) { storetest.Run(t, newStore) })
			t.Run("Service", func(t *testing.T) { storetest.RunService(t, newStore) })
		})
	}
}

func TestCreateTableOnMoto(t *testing.T) {
	ctx := context.Background()
	c, table := motoDB(t)
	// Idempotent: a second call finds the table and leaves it.
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
