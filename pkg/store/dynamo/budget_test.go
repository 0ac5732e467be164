package dynamo_test

import (
	"maps"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Every operation makes exactly the AWS calls it is designed to make
// (operations, not retry attempts, counted by an SDK middleware).
func TestCallBudget(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testCallBudget(t, b) })
	}
}

type calls map[string]int

func (e *env) want(t *testing.T, what string, want calls, f func() error) {
	t.Helper()
	e.calls.Reset()
	if err := f(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got := e.calls.Counts(); !maps.Equal(got, want) {
		t.Errorf("%s made %v, want exactly %v", what, got, want)
	}
}

func testCallBudget(t *testing.T, b backend) {
	e := newEnv(t, b, envOpts{kms: true})
	ctx := e.ctx
	var sec *secrets.Secret
	for _, n := range []string{"one", "two", "three"} {
		e.want(t, "create", calls{"KMS.GenerateDataKey": 1, "DynamoDB.TransactWriteItems": 1}, func() (err error) {
			sec, err = e.svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: n, Values: map[string]string{"k": n}})
			return err
		})
	}
	e.want(t, "get secret by ID", calls{"DynamoDB.GetItem": 1}, func() error {
		_, err := e.svc.GetSecret(ctx, "acme", sec.ID)
		return err
	})
	e.want(t, "get secret by name", calls{"DynamoDB.GetItem": 1}, func() error {
		_, err := e.svc.GetSecret(ctx, "acme", "three")
		return err
	})
	e.want(t, "store: get version by secret ID", calls{"DynamoDB.GetItem": 1}, func() error {
		_, err := e.store.GetVersion(ctx, "acme", sec.ID, 1)
		return err
	})
	// The service reads the secret first (it checks the number against the
	// secret's latest, and resolves "current").
	e.want(t, "service: get version", calls{"DynamoDB.GetItem": 2}, func() error {
		_, _, err := e.svc.GetVersion(ctx, "acme", sec.ID, "current")
		return err
	})
	e.want(t, "rotation without contention", calls{"DynamoDB.GetItem": 1, "KMS.GenerateDataKey": 1, "DynamoDB.TransactWriteItems": 1}, func() error {
		_, err := e.svc.UpdateSecret(ctx, "acme", "three", secrets.UpdateSecretInput{Values: map[string]string{"k": "3b"}})
		return err
	})
	e.want(t, "rename", calls{"DynamoDB.GetItem": 1, "DynamoDB.TransactWriteItems": 1}, func() error {
		_, err := e.svc.UpdateSecret(ctx, "acme", "three", secrets.UpdateSecretInput{Name: ptr("tres")})
		return err
	})
	e.want(t, "destroy a version", calls{"DynamoDB.GetItem": 2, "DynamoDB.TransactWriteItems": 1}, func() error {
		_, _, err := e.svc.ChangeVersionState(ctx, "acme", "tres", "1", secrets.ActionDestroy, nil)
		return err
	})
	e.want(t, "one list page", calls{"DynamoDB.Query": 1}, func() error {
		_, _, err := e.svc.ListSecrets(ctx, "acme", secrets.ListQuery{Limit: 2})
		return err
	})
	e.want(t, "one page of versions", calls{"DynamoDB.GetItem": 1, "DynamoDB.Query": 1}, func() error {
		_, _, err := e.svc.ListVersions(ctx, "acme", "tres", 0, 10)
		return err
	})
	names := []string{"one", "two", "tres"}
	e.want(t, "store: CurrentVersions of 3 names", calls{"DynamoDB.BatchGetItem": 2}, func() error {
		_, err := e.store.CurrentVersions(ctx, "acme", names)
		return err
	})
	e.want(t, "Reveal of 3 names, cold data-key cache", calls{"DynamoDB.BatchGetItem": 2, "KMS.Decrypt": 3}, func() error {
		_, err := e.svc.Reveal(ctx, "acme", names)
		return err
	})
	e.want(t, "Reveal of 3 names, warm data-key cache", calls{"DynamoDB.BatchGetItem": 2}, func() error {
		_, err := e.svc.Reveal(ctx, "acme", names)
		return err
	})
	var key string
	e.want(t, "create API key", calls{"DynamoDB.TransactWriteItems": 1}, func() (err error) {
		_, key, err = e.svc.CreateAPIKey(ctx, "acme", "ci", nil)
		return err
	})
	// A cold auth cache reads the key once and, for a key not used in the
	// last secrets.LastUsedInterval, records its use on the listing item and
	// on the key item (two UpdateItem).
	e.want(t, "Authenticate, cold cache", calls{"DynamoDB.GetItem": 1, "DynamoDB.UpdateItem": 2}, func() error {
		_, err := e.svc.Authenticate(ctx, key)
		return err
	})
	e.want(t, "Authenticate, warm cache", calls{}, func() error {
		_, err := e.svc.Authenticate(ctx, key)
		return err
	})
	// Another server (a cold auth cache) within secrets.LastUsedInterval of
	// that use only reads the key.
	other := secrets.NewService(e.store, nil, secrets.Options{})
	e.want(t, "Authenticate on another server, key used just now", calls{"DynamoDB.GetItem": 1}, func() error {
		_, err := other.Authenticate(ctx, key)
		return err
	})
}
