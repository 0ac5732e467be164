package memkv_test

import (
	"testing"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/kv/kvtest"
	"github.com/mobius-secrets/mobius/pkg/kv/memkv"
)

func newDriver(*testing.T) kv.Driver { return memkv.New() }

func TestConformance(t *testing.T) { kvtest.Run(t, newDriver) }

func TestRaces(t *testing.T) { kvtest.RunRaces(t, newDriver) }

func TestPartitions(t *testing.T) { kvtest.RunPartitions(t, newDriver) }
