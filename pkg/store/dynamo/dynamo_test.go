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

// backend is one DynamoDB stand-in, with the KMS stand-in paired with it.
type backend struct {
	name string
	// endpoint starts (or reuses) the stand-in and returns its URL.
	endpoint func(t *testing.T) string
	// create makes the table.
	create func(t *testing.T, c *dynamodb.Client, table string)
	// kms returns a KMS endpoint and a key in it.
	kms func(t *testing.T) (endpoint, keyID string)
}

var backends = []backend{
	{
		// moto_server, one per test binary: DynamoDB and KMS on one port.
		name:     "moto",
		endpoint: func(t *testing.T) string { return awstest.StartMoto(t) },
		create: func(t *testing.T, c *dynamodb.Client, table string) {
			t.Helper()
			if err := dynamo.CreateTable(context.Background(), c, table); err != nil {
				t.Fatalf("CreateTable on moto: %v", err)
			}
		},
		kms: func(t *testing.T) (string, string) {
			ep := awstest.StartMoto(t)
			id, err := awstest.CreateKMSKey(context.Background(), awstest.NewKMSClient(ep))
			if err != nil {
				t.Fatal(err)
			}
			return ep, id
		},
	},
	{
		// minidyn in process, one per test, with local-kms. minidyn has no
		// UpdateTimeToLive (nor TableStatus), so the table is created from
		// TableSchema directly; the store never relies on TTL deleting
		// anything.
		name:     "minidyn",
		endpoint: func(t *testing.T) string { return awstest.StartMinidyn(t) },
		create: func(t *testing.T, c *dynamodb.Client, table string) {
			t.Helper()
			if _, err := c.CreateTable(context.Background(), dynamo.TableSchema(table)); err != nil {
				t.Fatalf("CreateTable on minidyn: %v", err)
			}
		},
		kms: func(t *testing.T) (string, string) { return awstest.StartLocalKMS(t) },
	},
}

// motoDB returns a client of this binary's moto and a fresh table in it.
func motoDB(t *testing.T) (*dynamodb.Client, string) {
	c := awstest.NewDynamoClient(backends[0].endpoint(t))
	table := newTable()
	backends[0].create(t, c, table)
	return c, table
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			newStore := func(t *testing.T) secrets.Store {
				c := awstest.NewDynamoClient(b.endpoint(t))
				table := newTable()
				b.create(t, c, table)
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

// The Service on DynamoDB with a KMS key: create, rotate and Reveal round
// trip through GenerateDataKey and Decrypt.
func TestServiceKMSRoundTrip(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b, envOpts{kms: true, svcOpts: secrets.Options{DataKeyCacheSize: -1}})
			e.create("svc", map[string]string{"user": "u1", "password": "p1"})
			if got, err := e.reveal("svc"); err != nil || got["password"] != "p1" {
				t.Fatalf("Reveal v1: %v, %v", got, err)
			}
			e.rotate("svc", map[string]string{"user": "u2", "password": "p2"})
			if got, err := e.reveal("svc"); err != nil || got["password"] != "p2" || got["user"] != "u2" {
				t.Fatalf("Reveal v2: %v, %v", got, err)
			}
			if _, _, err := e.svc.ChangeVersionState(e.ctx, "acme", "svc", "1", secrets.ActionEnable, nil); err != nil {
				t.Fatal(err)
			}
			if got, err := e.reveal("svc"); err != nil || got["password"] != "p1" {
				t.Fatalf("Reveal after enabling v1 again: %v, %v", got, err)
			}
			if n := e.calls.Counts()["KMS.Decrypt"]; n != 3 {
				t.Errorf("%d KMS Decrypt calls, want 3 (one per Reveal, no cache)", n)
			}
		})
	}
}

// A metadata-only update (no version written or changed) on a stale
// revision is refused by the revision conditions alone, by ID and by name.
func TestStaleMetadataUpdate(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b, envOpts{})
			s := e.create("meta", map[string]string{"k": "v"})
			s = e.rotate("meta", map[string]string{"k": "v2"}) // revision 2
			for _, rename := range []bool{false, true} {
				next := *s
				next.Description, next.Revision = "late", s.Revision
				u := &secrets.Update{Secret: &next, PrevRevision: s.Revision - 1}
				if rename {
					next.Name, u.OldName = "meta-renamed", "meta"
				}
				if err := e.store.UpdateSecret(e.ctx, u); secrets.ErrorCode(err) != secrets.Aborted {
					t.Fatalf("rename %v: stale update = %v, want Aborted", rename, err)
				}
				for _, get := range []func() (*secrets.Secret, error){
					func() (*secrets.Secret, error) { return e.store.GetSecret(e.ctx, "acme", s.ID) },
					func() (*secrets.Secret, error) { return e.store.GetSecretByName(e.ctx, "acme", "meta") },
				} {
					if got, err := get(); err != nil || got.Description != "" || got.Revision != s.Revision {
						t.Fatalf("rename %v: after the refused update: %+v, %v", rename, got, err)
					}
				}
			}
		})
	}
}
