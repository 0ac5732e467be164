package dynamo_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// env is a Service over the DynamoDB store on one stand-in, with every SDK
// call counted and open to injected faults, and a separate raw client for
// looking at (and tampering with) the table.
type env struct {
	t       *testing.T
	ctx     context.Context
	raw     *dynamodb.Client
	table   string
	store   *dynamo.Store
	svc     *secrets.Service
	log     *testsupport.SyncBuffer
	calls   *awstest.Counter // both services, "DynamoDB.X" and "KMS.X"
	dbFault *awstest.FaultTransport
	kmFault *awstest.FaultTransport
}

type envOpts struct {
	kms      bool // KMS stand-in instead of a local key
	noRetry  bool // one attempt per SDK call
	svcOpts  secrets.Options
	storeOpt []dynamo.Option
}

func newEnv(t *testing.T, b backend, o envOpts) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), table: newTable(), log: &testsupport.SyncBuffer{},
		calls: &awstest.Counter{}, dbFault: &awstest.FaultTransport{}, kmFault: &awstest.FaultTransport{}}
	ep := b.endpoint(t)
	e.raw = awstest.NewDynamoClient(ep)
	b.create(t, e.raw, e.table)
	db := awstest.NewDynamoClient(ep, func(opt *dynamodb.Options) {
		opt.APIOptions = append(opt.APIOptions, e.calls.Middleware)
		opt.HTTPClient = e.dbFault
		if o.noRetry {
			opt.RetryMaxAttempts = 1
		}
	})
	e.store = dynamo.New(db, e.table, o.storeOpt...)
	var w secrets.KeyWrapper
	if o.kms {
		kep, keyID := b.kms(t)
		w = kms.New(awstest.NewKMSClient(kep, func(opt *awskms.Options) {
			opt.APIOptions = append(opt.APIOptions, e.calls.Middleware)
			opt.HTTPClient = e.kmFault
		}), keyID)
	} else {
		kek := bytes.Repeat([]byte{7}, 32)
		lw, err := local.New(kek)
		if err != nil {
			t.Fatal(err)
		}
		w = lw
	}
	so := o.svcOpts
	so.Logger = slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.svc = secrets.NewService(e.store, w, so)
	return e
}

// scan returns every item of the table (tests may scan; the store never does).
func (e *env) scan() []map[string]types.AttributeValue {
	e.t.Helper()
	var out []map[string]types.AttributeValue
	var start map[string]types.AttributeValue
	for {
		res, err := e.raw.Scan(e.ctx, &dynamodb.ScanInput{TableName: aws.String(e.table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			e.t.Fatalf("Scan: %v", err)
		}
		out = append(out, res.Items...)
		if len(res.LastEvaluatedKey) == 0 {
			return out
		}
		start = res.LastEvaluatedKey
	}
}

func (e *env) rawGet(pk, sk string) map[string]types.AttributeValue {
	e.t.Helper()
	res, err := e.raw.GetItem(e.ctx, &dynamodb.GetItemInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{dynamo.PartitionKey: &types.AttributeValueMemberS{Value: pk}, dynamo.SortKey: &types.AttributeValueMemberS{Value: sk}}})
	if err != nil || len(res.Item) == 0 {
		e.t.Fatalf("GetItem %s %s: %v (found %d attributes)", pk, sk, err, len(res.Item))
	}
	return res.Item
}

func (e *env) rawPut(it map[string]types.AttributeValue) {
	e.t.Helper()
	if _, err := e.raw.PutItem(e.ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: it}); err != nil {
		e.t.Fatalf("PutItem: %v", err)
	}
}

func (e *env) create(name string, values map[string]string) *secrets.Secret {
	e.t.Helper()
	sec, err := e.svc.CreateSecret(e.ctx, "acme", secrets.CreateSecretInput{Name: name, Values: values})
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	return sec
}

func (e *env) rotate(name string, values map[string]string) *secrets.Secret {
	e.t.Helper()
	sec, err := e.svc.UpdateSecret(e.ctx, "acme", name, secrets.UpdateSecretInput{Values: values})
	if err != nil {
		e.t.Fatalf("rotate %s: %v", name, err)
	}
	return sec
}

// reveal returns the values of name's ENABLED version.
func (e *env) reveal(name string) (map[string]string, error) {
	out, err := e.svc.Reveal(e.ctx, "acme", []string{name})
	if err != nil {
		return nil, err
	}
	r, ok := out[name]
	if !ok {
		return nil, secrets.Errorf(secrets.NotFound, "no secret %s", name)
	}
	return r.Values, nil
}

func versionPK(sec *secrets.Secret) string { return "P#" + sec.Project + "#S#" + sec.ID }

func versionKey(n int) string { return fmt.Sprintf("V#%010d", n) }
