package dynamo_test

import (
	"testing"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/kv/kvtest"
)

// The driver passes the port's conformance suite on each stand-in, each
// case on a fresh table.
func TestConformance(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		newDriver := func(t *testing.T) kv.Driver { return newEnv(t, b, envOpts{}).d }
		t.Run("Run", func(t *testing.T) { kvtest.Run(t, newDriver) })
		t.Run("RunRaces", func(t *testing.T) { kvtest.RunRaces(t, newDriver) })
	})
}
