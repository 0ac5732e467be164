// Package suites runs the domain's suites on every store: the in-memory
// reference driver, the embedded store, and the DynamoDB driver on moto
// and on minidyn. Every rule of pkg/secrets must hold on each alike.
package suites

import (
	"flag"
	"os"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/standins"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/kv/memkv"
	"github.com/mobius-secrets/mobius/pkg/store/modeltest"
	"github.com/mobius-secrets/mobius/pkg/store/storetest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

var backends = append([]standins.Backend{{Name: "memkv", New: func(testing.TB) kv.Driver { return memkv.New() }}}, standins.Backends...)

// TestDomainSuite: what every backend must do as a user sees it, each case
// on a fresh store.
func TestDomainSuite(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) kv.Driver { return b.New(t) })
		})
	}
}

// TestModel: the model test, one fresh store per sequence. moto answers
// slowly, so it runs MODEL_CHECKS_MOTO sequences (5 unless set; make soak
// sets more); the others rapid's default (100), or -rapid.checks.
func TestModel(t *testing.T) {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "rapid.checks" })
	checks := flag.Lookup("rapid.checks").Value.String()
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			if !given {
				n := "100"
				if b.Name == "moto" {
					n = envOr("MODEL_CHECKS_MOTO", "5")
				}
				flag.Set("rapid.checks", n)
				defer flag.Set("rapid.checks", checks)
			}
			st := modeltest.Run(t, func(t *testing.T) kv.Driver { return b.New(t) })
			if st.Steps.Load() == 0 {
				t.Fatal("the model test ran no steps")
			}
			t.Logf("%s: %d sequences, %d steps", b.Name, st.Sequences.Load(), st.Steps.Load())
		})
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
