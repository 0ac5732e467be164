package reliability

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
	"github.com/mobius-secrets/mobius/pkg/store/modeltest"
)

var motoTables atomic.Int64

// The model-based test of pkg/store/modeltest on moto, the stand-in closest
// to DynamoDB's transaction semantics: a fresh table per sequence. Moto is
// slow, so the number of sequences is RELIABILITY_MODEL_CHECKS (5 unless
// set; or -rapid.checks).
func TestModelOnMoto(t *testing.T) {
	c := awstest.NewDynamoClient(awstest.StartMoto(t))
	start := time.Now()
	st := modeltest.Run(t, func(t *testing.T) secrets.Store {
		table := fmt.Sprintf("model-%d-%d", time.Now().UnixNano(), motoTables.Add(1))
		if err := dynamo.CreateTable(context.Background(), c, table); err != nil {
			t.Fatalf("CreateTable on moto: %v", err)
		}
		return dynamo.New(c, table)
	})
	t.Logf("model on moto: %d sequences, %d steps in %s", st.Sequences.Load(), st.Steps.Load(), time.Since(start).Round(time.Millisecond))
	if st.Steps.Load() == 0 {
		t.Fatal("the model test ran no steps")
	}
}
