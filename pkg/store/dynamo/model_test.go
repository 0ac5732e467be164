package dynamo_test

import (
	"testing"

	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
	"github.com/mobius-secrets/mobius/pkg/store/modeltest"
)

// Random sequences of operations through the Service, checked against a
// reference model, on minidyn (in process, so fast enough for many
// sequences): one server, a fresh table per sequence.
func TestModel(t *testing.T) {
	c := awstest.NewDynamoClient(awstest.StartMinidyn(t))
	modeltest.Run(t, func(t *testing.T) secrets.Store {
		table := newTable()
		backends[1].create(t, c, table)
		return dynamo.New(c, table)
	})
}
